import { Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { CellCounter, CellHistogram } from './metric-cells.js';
import { TOKEN_TYPES, type TokenUsage } from '../core/token-usage.js';
import { SeriesTables, type HttpSeries, type ModelSeries } from './series.js';
import { ModeLabels, ModelLabels } from './labels.js';
import { ClusterMetricsClient } from './cluster-metrics.js';
import type { PriceTable } from '../core/pricing.js';

/** Seconds. LLM calls run from milliseconds (count_tokens) to ten minutes (long non-streaming answers). */
const API_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface MetricsOptions {
  modes: ReadonlySet<string> | undefined;
  maxModes: number;
  maxModels: number;
  /** Model ids that always get their own label (MODELS). */
  models?: ReadonlySet<string> | undefined;
  prices: PriceTable;
  /** Price tables of upstreams that have their own (UPSTREAMS `pricing`); others use `prices`. */
  upstreamPrices?: ReadonlyMap<string, PriceTable> | undefined;
  /** Reads the number of flights in progress at scrape time. */
  flightsInProgress: () => number;
  /**
   * WORKERS > 1: this process's worker slot (0..WORKERS-1; a replacement takes the slot of the
   * worker it replaces). Scrapes then read the whole gateway, aggregated by the primary, and the
   * process and runtime metrics carry `worker` with this value. Absent: a single process, no IPC.
   */
  worker?: string | undefined;
}

/**
 * Every metric of the public contract, on an explicit registry (no global state: tests and
 * several gateways in one process each get their own). Label values for mode and model pass
 * through ModeLabels and ModelLabels; nothing per-tenant or per-request ever becomes a label.
 *
 * Across workers (WORKERS > 1, cluster-metrics.ts) every metric aggregates by the `aggregator`
 * declared with it: counters and histograms sum (the cell metrics declare `sum`), gauges say what
 * their sum would mean or declare another; process and runtime metrics stay one series per worker.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly modes: ModeLabels;
  readonly models: ModelLabels;
  /**
   * Breaker keys and span attributes by requested model: the first MAX_MODELS model strings seen,
   * `other` beyond. Interim: the upstream call chain's rewrite keys breakers by the real model in an LRU.
   */
  private readonly prices: PriceTable;
  private readonly upstreamPrices: ReadonlyMap<string, PriceTable>;

  readonly tokens: CellCounter<'type' | 'mode' | 'model' | 'upstream'>;
  readonly tokensSaved: CellCounter<'type' | 'mode' | 'model' | 'source'>;
  readonly costSavedUsd: CellCounter<'mode' | 'model' | 'source'>;
  readonly costUsd: CellCounter<'mode' | 'model' | 'upstream'>;
  readonly cacheSavingsUsd: CellCounter<'mode' | 'model' | 'upstream'>;
  readonly apiCalls: CellCounter<'endpoint' | 'mode' | 'model' | 'status' | 'upstream'>;
  readonly apiDuration: CellHistogram<'endpoint' | 'mode' | 'model' | 'upstream'>;
  readonly ttft: CellHistogram<'mode' | 'model' | 'upstream'>;
  readonly upstreamFailovers: CellCounter<'from' | 'to' | 'reason'>;
  readonly cacheAffinity: CellCounter<'result' | 'reason'>;
  readonly coalesced: CellCounter<'endpoint' | 'mode'>;
  readonly lingerCatchUp: CellCounter;
  readonly cacheHits: CellCounter<'endpoint' | 'mode'>;
  readonly cacheMisses: CellCounter<'endpoint' | 'mode'>;
  readonly promptCacheBreaks: CellCounter<'mode' | 'part'>;
  /** Read at each scrape from the breakers that exist then (`reportBreakerStates`): never set on the request path. */
  readonly breakerState: Gauge<'breaker'>;
  /** The breakers' (label, state) pairs, registered by the pipeline's Breakers; none before. */
  private breakerStates: () => Iterable<readonly [string, number]> = () => [];
  readonly breakerEvents: CellCounter<'breaker' | 'event'>;
  readonly httpRequests: CellCounter<'method' | 'route' | 'status'>;
  readonly httpDuration: CellHistogram<'method' | 'route' | 'status'>;
  /** Requests in progress: a plain number on the request path, read by the `http_active_requests` gauge at scrape time. */
  httpActive = 0;
  readonly rateLimited: CellCounter<'mode'>;
  readonly upstreamRetries: CellCounter<'reason'>;
  readonly redisAvailable: Gauge;
  readonly redisErrors: CellCounter;
  readonly remoteCoalesced: CellCounter<'role'>;
  readonly gatewayOverhead: CellHistogram;
  /** WORKERS > 1: renders scrapes from every worker's registry. */
  private readonly cluster: ClusterMetricsClient | undefined;
  /** The request path's series, resolved once per label set (series.ts). */
  private readonly series: SeriesTables;

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    this.modes = new ModeLabels(options.modes, options.maxModes);
    const allowed = options.models;
    this.models = new ModelLabels((model) => allowed?.has(model) === true || options.prices.hasExact(model), options.maxModels);
    this.prices = options.prices;
    this.upstreamPrices = options.upstreamPrices ?? new Map();
    // Heap, event-loop lag, file descriptors are facts about one process: per worker (a sum or an
    // average would hide the one in trouble), so across workers each keeps its own `worker` series.
    collectDefaultMetrics({ register: this.registry, ...(options.worker === undefined ? {} : { labels: { worker: options.worker } }) });
    // prom-client leaves its start time out of cluster aggregates (its workers share no label); with `worker`
    // each series is one process's, so keep it: a restarted worker shows as a new start time.
    const startTime = this.registry.getSingleMetric('process_start_time_seconds') as { aggregator?: string } | undefined;
    if (options.worker !== undefined && startTime !== undefined) startTime.aggregator = 'first';
    this.cluster = options.worker === undefined ? undefined : new ClusterMetricsClient(this.registry);

    this.tokens = new CellCounter({ name: 'claude_tokens_total', help: 'Tokens billed upstream, counted once per upstream call', labelNames: ['type', 'mode', 'model', 'upstream'], registers });
    this.tokensSaved = new CellCounter({ name: 'claude_tokens_saved_total', help: 'Tokens delivered to a client without an upstream call of its own', labelNames: ['type', 'mode', 'model', 'source'], registers });
    this.costSavedUsd = new CellCounter({ name: 'claude_cost_saved_usd_total', help: 'Estimated cost in USD (list prices) of the tokens delivered without an upstream call of their own', labelNames: ['mode', 'model', 'source'], registers });
    this.costUsd = new CellCounter({ name: 'claude_cost_usd_total', help: 'Estimated cost in USD of billed tokens (list prices; the bill is authoritative)', labelNames: ['mode', 'model', 'upstream'], registers });
    this.cacheSavingsUsd = new CellCounter({ name: 'claude_prompt_cache_savings_usd_total', help: 'Estimated USD that prompt-cache reads saved against the same tokens billed as input (list prices)', labelNames: ['mode', 'model', 'upstream'], registers });
    this.apiCalls = new CellCounter({ name: 'claude_api_calls_total', help: 'Upstream calls by outcome status ("error" for transport failures)', labelNames: ['endpoint', 'mode', 'model', 'status', 'upstream'], registers });
    this.cacheAffinity = new CellCounter({ name: 'cache_affinity_total', help: 'Calls with a cached prompt head routed by cache affinity: hit (sent to the key that holds it warm), miss (no key does), moved (it does, but health moved the call; reason says why)', labelNames: ['result', 'reason'], registers });
    this.upstreamFailovers = new CellCounter({ name: 'upstream_failovers_total', help: 'Calls moved from one upstream to the next before any byte reached a client, by reason', labelNames: ['from', 'to', 'reason'], registers });
    // Starts when the gateway sends the upstream request; stops when the upstream body ended or failed.
    this.apiDuration = new CellHistogram({ name: 'claude_api_duration_seconds', help: 'Upstream call duration, request sent to body ended', labelNames: ['endpoint', 'mode', 'model', 'upstream'], buckets: API_BUCKETS, registers });
    // Starts when the gateway sends the upstream request; stops at the first content event of a stream.
    this.ttft = new CellHistogram({ name: 'claude_api_ttft_seconds', help: 'Time to first token of streamed upstream calls', labelNames: ['mode', 'model', 'upstream'], buckets: TTFT_BUCKETS, registers });
    this.coalesced = new CellCounter({ name: 'coalesced_requests_total', help: 'Requests answered by joining an identical call already in flight', labelNames: ['endpoint', 'mode'], registers });
    this.lingerCatchUp = new CellCounter({ name: 'coalesce_linger_catchup_total', help: 'Lingering answers served past COALESCE_LINGER_MS because the gateway had not been idle since the call ended (part of coalesced_requests_total)', registers });
    new Gauge({
      name: 'coalescing_flights_in_progress',
      help: 'Upstream calls that identical requests can join right now',
      // Each worker's flights are its own.
      aggregator: 'sum',
      registers,
      collect() {
        this.set(options.flightsInProgress());
      },
    });
    this.cacheHits = new CellCounter({ name: 'cache_hits_total', help: 'Requests answered from the response cache', labelNames: ['endpoint', 'mode'], registers });
    this.cacheMisses = new CellCounter({ name: 'cache_misses_total', help: 'Cacheable requests not found in the response cache', labelNames: ['endpoint', 'mode'], registers });
    this.promptCacheBreaks = new CellCounter({ name: 'claude_prompt_cache_breaks_total', help: 'Requests of a session (x-claude-code-session-id or x-gateway-session) whose prompt changed before the previous request\'s last cache_control breakpoint, by the first part that changed (tools, system, messages, model)', labelNames: ['mode', 'part'], registers });
    const breakerStates = (): Iterable<readonly [string, number]> => this.breakerStates();
    this.breakerState = new Gauge({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open (the worst of the breakers that share a label)',
      labelNames: ['breaker'],
      // Each worker has its own breakers: across workers too, the most open one (2 while any worker rejects).
      aggregator: 'max',
      registers,
      // One series per label of a breaker that exists now, with its state now: an evicted breaker's series
      // goes with it, and breakers sharing a label (`<upstream>/other`) report the worst of them.
      collect() {
        const worst = new Map<string, number>();
        for (const [breaker, state] of breakerStates()) worst.set(breaker, Math.max(state, worst.get(breaker) ?? state));
        this.reset();
        for (const [breaker, state] of worst) this.set({ breaker }, state);
      },
    });
    this.breakerEvents = new CellCounter({ name: 'circuit_breaker_events_total', help: 'Circuit breaker events (open, close, halfOpen, reject, success, failure)', labelNames: ['breaker', 'event'], registers });
    this.httpRequests = new CellCounter({ name: 'http_requests_total', help: 'Requests answered by the gateway', labelNames: ['method', 'route', 'status'], registers });
    // Starts when the request reaches the gateway; stops when the response ended or the client left.
    this.httpDuration = new CellHistogram({ name: 'http_request_duration_seconds', help: 'Request duration at the gateway', labelNames: ['method', 'route', 'status'], buckets: HTTP_BUCKETS, registers });
    const activeRequests = (): number => this.httpActive;
    new Gauge({
      name: 'http_active_requests',
      help: 'Requests in progress',
      aggregator: 'sum',
      registers,
      collect() {
        this.set(activeRequests());
      },
    });
    this.upstreamRetries = new CellCounter({ name: 'upstream_retries_total', help: 'Upstream attempts the gateway retried (connect failure, overloaded)', labelNames: ['reason'], registers });
    // Across workers: 1 only while every worker coordinates through Redis.
    this.redisAvailable = new Gauge({ name: 'redis_available', help: '1 while shared coordination on Redis is in use, 0 while the gateway runs local-only', aggregator: 'min', registers });
    this.redisErrors = new CellCounter({ name: 'redis_errors_total', help: 'Redis commands that failed or timed out (each one falls back to local behaviour)', registers });
    this.remoteCoalesced = new CellCounter({ name: 'remote_flights_total', help: 'Flights coordinated across instances through Redis, by this instance\'s role (leader, follower, takeover)', labelNames: ['role'], registers });
    // Request received → upstream request sent, plus upstream headers received → client headers written (the client that made the call).
    this.gatewayOverhead = new CellHistogram({ name: 'gateway_overhead_seconds', help: 'Time the gateway itself adds to a request that makes an upstream call', buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.rateLimited = new CellCounter({ name: 'rate_limited_requests_total', help: 'Requests refused by the gateway rate limiter', labelNames: ['mode'], registers });
    this.series = new SeriesTables(this, (upstream) => this.upstreamPrices.get(upstream) ?? this.prices);
  }

  /** The series of upstream calls of one (mode, model, upstream): labels already bounded (modes, models: see ModeLabels, ModelLabels). */
  modelSeries(mode: string, model: string, upstream: string): ModelSeries {
    return this.series.model(mode, model, upstream);
  }

  /** The two series of one answered request (http_requests_total, http_request_duration_seconds). */
  requestSeries(method: string, route: string, status: string): HttpSeries {
    return this.series.request(method, route, status);
  }

  /** Where `circuit_breaker_state` reads the breakers at each scrape (label, 0 closed / 1 half-open / 2 open). */
  reportBreakerStates(source: () => Iterable<readonly [string, number]>): void {
    this.breakerStates = source;
  }

  /** Billed usage of one upstream call, with its estimated cost. */
  recordBilled(mode: string, model: string, upstream: string, usage: TokenUsage): void {
    this.series.model(mode, model, upstream).billed(usage);
  }

  /**
   * Usage a client received without its own upstream call. `model` is the label; `pricedAs`, the
   * model id itself (the label may be `other` while the id has a price).
   */
  recordSaved(mode: string, model: string, usage: TokenUsage, source: 'coalesced' | 'cache', pricedAs: string | undefined): void {
    for (const type of TOKEN_TYPES) {
      if (usage[type] > 0) this.tokensSaved.inc({ type, mode, model, source }, usage[type]);
    }
    const cost = this.prices.costUsd(pricedAs ?? model, usage);
    if (cost > 0) this.costSavedUsd.inc({ mode, model, source }, cost);
  }

  /** What /metrics answers: this process's registry, or (WORKERS > 1) the whole gateway's. */
  async render(): Promise<string> {
    return this.cluster === undefined ? this.registry.metrics() : this.cluster.render();
  }

  /** The same metrics as getMetricsAsJSON() gives (the console's live reading): this process's, or (WORKERS > 1) the whole gateway's. */
  async readings(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.cluster === undefined ? this.registry.getMetricsAsJSON() : this.cluster.readings();
  }
}
