import type { Cluster, Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ignoreSendError, SupervisorRequests } from '../core/supervisor-requests.js';

/**
 * WORKERS > 1: one /metrics scrape reads the whole gateway, not the worker that happened to accept
 * the connection. The primary cannot answer HTTP on the shared port itself, so the worker that
 * received the scrape asks the primary over IPC; the primary asks every ready worker for its
 * registry as JSON, aggregates with prom-client's AggregatorRegistry.aggregate (each metric by the
 * `aggregator` declared with it: counters and histograms sum) and sends the text back (or, for the
 * console's live reading, the same aggregate as getMetricsAsJSON() gives it).
 *
 * prom-client's own AggregatorRegistry.clusterMetrics() is not used: it asks every connected
 * worker, including one still loading that never answers, with a fixed 5 s timeout, and keeps a
 * request per timed-out scrape forever. Here only workers that said they are ready are asked,
 * every wait has a deadline, at most one collection runs at a time (scrapes that arrive meanwhile
 * share it) and a worker holds a bounded number of scrapes waiting.
 *
 * A ready worker that does not answer within the deadline fails the scrape (503): a sum without
 * it would be lower than the last one, which Prometheus reads as a counter reset (a rate spike).
 * For the same reason a worker that exits keeps its counters and histograms, as last collected, in
 * every later sum (its gauges leave with it): the whole gateway's counters never fall while the
 * supervisor lives. What it counted after its last collection is lost with it.
 */

/** How long the primary waits for every worker's registry; a scrape fails after it. */
export const CLUSTER_SCRAPE_TIMEOUT_MS = 3_000;
/** The worker's own deadline on the primary's answer (the primary answers first, by its deadline). */
const WORKER_WAIT_MARGIN_MS = 1_000;
/** Scrapes one worker may hold waiting for the primary; more are refused at once. */
const MAX_WAITING_SCRAPES = 16;

/** Marks this module's IPC messages among others on the channel (prom-client's, node's own). */
const CHANNEL = 'claude-gateway:metrics';

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type MetricJson = MetricsJson[number];
type ValueJson = MetricJson['values'][number] & { metricName?: string };

/**
 * What a scrape asks for: the exposition text (/metrics), or the same aggregate as getMetricsAsJSON()
 * (the console's live reading, which sums series itself).
 */
export type ScrapeForm = 'text' | 'json';

type WorkerMessage =
  | { channel: typeof CHANNEL; op: 'ready' }
  | { channel: typeof CHANNEL; op: 'scrape'; id: number; form: ScrapeForm }
  | { channel: typeof CHANNEL; op: 'collected'; id: number; metrics?: MetricsJson; error?: string };

type PrimaryMessage =
  | { channel: typeof CHANNEL; op: 'collect'; id: number }
  | { channel: typeof CHANNEL; op: 'scraped'; id: number; text?: string; metrics?: MetricsJson; error?: string };

/** The primary's answer to one scrape. */
type ScrapedMessage = Extract<PrimaryMessage, { op: 'scraped' }>;

function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === CHANNEL;
}

function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === CHANNEL;
}


/** A scrape that cannot read the whole gateway right now (the route answers 503). */
export class ClusterScrapeUnavailable extends Error {}

interface Collection {
  readonly id: number;
  /** Workers whose registry has not arrived yet. */
  readonly waiting: Set<number>;
  /** Registries that arrived, by worker id. */
  readonly answers: Map<number, MetricsJson>;
  /** Scrapes sharing this collection: the asking worker, its scrape id and the form it asked for. */
  readonly scrapes: { worker: Worker; id: number; form: ScrapeForm }[];
  readonly timer: NodeJS.Timeout;
  finished: boolean;
}

/** Metrics whose sum only grows: what exited workers counted stays in the gateway's totals. */
function isCumulative(metric: MetricJson): boolean {
  const type = metric.type as unknown as string;
  return type === 'counter' || type === 'histogram';
}

/** One series of a metric: its sample name (a histogram's _bucket, _sum, _count) and its labels, in name order. */
function seriesKey(value: ValueJson): string {
  const labels = Object.entries(value.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([value.metricName ?? '', labels]);
}

/**
 * Counters and histograms of workers that exited, summed per series. Bounded like the workers'
 * own registries: the same metrics and label sets (the `worker` label takes WORKERS values).
 */
class RetiredCounts {
  private readonly metrics = new Map<string, { metric: MetricJson; series: Map<string, ValueJson> }>();

  add(last: MetricsJson): void {
    for (const metric of last) {
      if (!isCumulative(metric)) continue;
      let kept = this.metrics.get(metric.name);
      if (kept === undefined) {
        kept = { metric: { ...metric, values: [] }, series: new Map() };
        this.metrics.set(metric.name, kept);
      }
      for (const value of metric.values as ValueJson[]) {
        const key = seriesKey(value);
        const sum = kept.series.get(key);
        if (sum === undefined) kept.series.set(key, { ...value, labels: { ...value.labels } });
        else sum.value += value.value;
      }
    }
  }

  /** As one more worker's getMetricsAsJSON() (empty until a worker exited after being collected). */
  snapshot(): MetricsJson {
    return [...this.metrics.values()].map(({ metric, series }) => ({ ...metric, values: [...series.values()].map((v) => ({ ...v })) }));
  }
}

/**
 * The primary's side: answers workers' scrapes with the aggregate of every ready worker (and what
 * exited workers counted). Returns a function that stops listening.
 */
export function serveClusterMetrics(cluster: Cluster, timeoutMs = CLUSTER_SCRAPE_TIMEOUT_MS): () => void {
  const ready = new Map<number, Worker>();
  /** Each ready worker's registry as last collected: what it had counted by then. */
  const lastCollected = new Map<number, MetricsJson>();
  const retired = new RetiredCounts();
  let nextId = 0;
  let current: Collection | undefined;

  /** Ends a collection once: no scrape joins it after this; every scrape sharing it gets the outcome. */
  const finish = (collection: Collection, outcome: Registry | { error: string }): void => {
    if (collection.finished) return;
    collection.finished = true;
    clearTimeout(collection.timer);
    if (current === collection) current = undefined;
    // Each form rendered once for every scrape that shares the collection, and only when one asked for it.
    const forms = new Map<ScrapeForm, Promise<{ text: string } | { metrics: MetricsJson } | { error: string }>>();
    const answerIn = (form: ScrapeForm): Promise<{ text: string } | { metrics: MetricsJson } | { error: string }> => {
      if ('error' in outcome) return Promise.resolve(outcome);
      let answer = forms.get(form);
      if (answer === undefined) {
        const rendered = form === 'text' ? outcome.metrics().then((text) => ({ text })) : outcome.getMetricsAsJSON().then((metrics) => ({ metrics }));
        answer = rendered.catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }));
        forms.set(form, answer);
      }
      return answer;
    };
    for (const scrape of collection.scrapes) {
      void answerIn(scrape.form).then((answer) => {
        if (!scrape.worker.isConnected()) return;
        const message: PrimaryMessage = { channel: CHANNEL, op: 'scraped', id: scrape.id, ...answer };
        scrape.worker.send(message, undefined, ignoreSendError);
      });
    }
  };
  const settleIfComplete = (collection: Collection): void => {
    if (collection.waiting.size > 0) return;
    // Each metric by the aggregator declared with it (prom-client's default: sum); throws on an unknown one.
    // Exited workers' counts last: the exposition keeps the live workers' order of metrics.
    const answers = [...collection.answers.values(), retired.snapshot()];
    let aggregate: Registry;
    try {
      aggregate = AggregatorRegistry.aggregate(answers);
    } catch (err) {
      finish(collection, { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    finish(collection, aggregate);
  };

  const onMessage = (worker: Worker, message: unknown): void => {
    if (!isWorkerMessage(message)) return;
    if (message.op === 'ready') {
      ready.set(worker.id, worker);
      return;
    }
    if (message.op === 'scrape') {
      if (current === undefined) {
        const id = nextId++;
        const collection: Collection = {
          id,
          waiting: new Set(),
          answers: new Map(),
          scrapes: [],
          finished: false,
          timer: setTimeout(() => {
            const missing = collection.waiting.size;
            finish(collection, { error: `${missing} of ${ready.size} workers did not send their metrics within ${timeoutMs} ms` });
          }, timeoutMs),
        };
        current = collection;
        for (const [workerId, each] of ready) {
          if (!each.isConnected()) continue;
          collection.waiting.add(workerId);
          const collect: PrimaryMessage = { channel: CHANNEL, op: 'collect', id };
          each.send(collect, undefined, ignoreSendError);
        }
      }
      current.scrapes.push({ worker, id: message.id, form: message.form === 'json' ? 'json' : 'text' });
      settleIfComplete(current);
      return;
    }
    // 'collected': a late answer to a finished collection is dropped.
    const collection = current;
    if (collection?.id !== message.id || !collection.waiting.delete(worker.id)) return;
    if (message.error !== undefined || message.metrics === undefined) {
      finish(collection, { error: `a worker could not collect its metrics: ${message.error ?? 'no metrics'}` });
      return;
    }
    lastCollected.set(worker.id, message.metrics);
    collection.answers.set(worker.id, message.metrics);
    settleIfComplete(collection);
  };
  const onExit = (worker: Worker): void => {
    ready.delete(worker.id);
    const last = lastCollected.get(worker.id);
    lastCollected.delete(worker.id);
    if (last !== undefined) retired.add(last);
    // Its answer to the running collection, if any, is now part of the retired counts.
    current?.answers.delete(worker.id);
    if (current?.waiting.delete(worker.id) === true) settleIfComplete(current);
  };
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return () => {
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
    if (current !== undefined) finish(current, { error: 'the supervisor is stopping' });
  };
}

/**
 * A worker's side: answers the primary's requests for this registry, and renders a scrape by
 * asking the primary for the whole gateway's metrics. `process.send` must exist (a cluster worker).
 * It answers until the process exits, draining included: the primary stops waiting for a worker
 * once it has exited, not before.
 */
export class ClusterMetricsClient {
  private readonly scrapes: SupervisorRequests<ScrapedMessage>;
  private readonly onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message)) return;
    if (message.op === 'collect') {
      const id = message.id;
      this.registry.getMetricsAsJSON().then(
        (metrics) => this.send({ channel: CHANNEL, op: 'collected', id, metrics }),
        (err: unknown) => this.send({ channel: CHANNEL, op: 'collected', id, error: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    const answered = message.error === undefined && (message.text !== undefined || message.metrics !== undefined);
    this.scrapes.settle(message.id, answered ? message : new ClusterScrapeUnavailable(message.error ?? 'no answer'));
  };

  constructor(
    private readonly registry: Registry,
    timeoutMs = CLUSTER_SCRAPE_TIMEOUT_MS,
  ) {
    this.scrapes = new SupervisorRequests<ScrapedMessage>({
      deadlineMs: timeoutMs + WORKER_WAIT_MARGIN_MS,
      maxWaiting: MAX_WAITING_SCRAPES,
      failure: (reason, deadlineMs, maxWaiting) =>
        new ClusterScrapeUnavailable(
          reason === 'deadline' ? `the supervisor did not answer within ${deadlineMs} ms` : reason === 'full' ? `${maxWaiting} scrapes are already waiting` : 'the supervisor is gone',
        ),
    });
    process.on('message', this.onMessage);
    // Only now can the primary ask this worker; until then it is not waited for.
    this.send({ channel: CHANNEL, op: 'ready' });
  }

  /** The whole gateway's exposition text, aggregated by the primary. */
  async render(): Promise<string> {
    const { text } = await this.ask('text');
    if (text === undefined) throw new ClusterScrapeUnavailable('no exposition text in the answer');
    return text;
  }

  /** The whole gateway's metrics as getMetricsAsJSON() gives one registry's, aggregated by the primary. */
  async readings(): Promise<MetricsJson> {
    const { metrics } = await this.ask('json');
    if (metrics === undefined) throw new ClusterScrapeUnavailable('no metrics in the answer');
    return metrics;
  }

  private ask(form: ScrapeForm): Promise<ScrapedMessage> {
    return this.scrapes.ask((id): WorkerMessage => ({ channel: CHANNEL, op: 'scrape', id, form }));
  }

  private send(message: WorkerMessage): boolean {
    if (process.send === undefined || !process.connected) return false;
    process.send(message, undefined, {}, ignoreSendError);
    return true;
  }
}
