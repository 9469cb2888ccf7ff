import { TOKEN_TYPES, type TokenUsage } from '../core/token-usage.js';
import type { PriceTable } from '../core/pricing.js';
import type { CellCounter, CellHistogram, CounterSeries, HistogramSeries } from './metric-cells.js';

/**
 * The series a request writes, resolved once per label set and kept: a request then writes its
 * metrics through a few Map look-ups by label value (no label object, no walk of each metric's
 * label trie). Every label value here is already bounded (ModeLabels, ModelLabels, configured
 * upstreams, fixed endpoint, route, method and status sets), so these tables are bounded as the
 * metrics' own cells are, and like them never evicted.
 *
 * A series is created in its metric when it first counts (as `inc`/`observe` would create it), never
 * ahead: the exposition shows exactly the series it showed before.
 */

/** The metrics these series write (GatewayMetrics' fields). */
export interface SeriesMetrics {
  readonly tokens: CellCounter<'type' | 'mode' | 'model' | 'upstream'>;
  readonly costUsd: CellCounter<'mode' | 'model' | 'upstream'>;
  readonly cacheSavingsUsd: CellCounter<'mode' | 'model' | 'upstream'>;
  readonly apiCalls: CellCounter<'endpoint' | 'mode' | 'model' | 'status' | 'upstream'>;
  readonly apiDuration: CellHistogram<'endpoint' | 'mode' | 'model' | 'upstream'>;
  readonly ttft: CellHistogram<'mode' | 'model' | 'upstream'>;
  readonly httpRequests: CellCounter<'method' | 'route' | 'status'>;
  readonly httpDuration: CellHistogram<'method' | 'route' | 'status'>;
}

/** The inner Map of `map` under `key`, created on first use. */
function level<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = map.get(key);
  if (inner === undefined) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}

/** The series of one (mode, model, upstream): billed tokens, cost, prompt-cache savings, time to first token; and its calls by endpoint. */
export class ModelSeries {
  private readonly tokens: (CounterSeries | undefined)[] = TOKEN_TYPES.map(() => undefined);
  private cost: CounterSeries | undefined;
  private savings: CounterSeries | undefined;
  private firstToken: HistogramSeries | undefined;
  private readonly endpoints = new Map<string, CallSeries>();

  constructor(
    private readonly metrics: SeriesMetrics,
    private readonly prices: PriceTable,
    readonly mode: string,
    readonly model: string,
    readonly upstream: string,
  ) {}

  /** Billed usage of one upstream call, with its estimated cost (list prices of the upstream's table). */
  billed(usage: TokenUsage): void {
    const { metrics, mode, model, upstream } = this;
    for (let i = 0; i < TOKEN_TYPES.length; i++) {
      const type = TOKEN_TYPES[i] as (typeof TOKEN_TYPES)[number];
      const count = usage[type];
      if (count > 0) (this.tokens[i] ??= metrics.tokens.labels({ type, mode, model, upstream })).inc(count);
    }
    const cost = this.prices.costUsd(model, usage);
    if (cost > 0) (this.cost ??= metrics.costUsd.labels({ mode, model, upstream })).inc(cost);
    const saved = this.prices.cacheSavingsUsd(model, usage.cache_read);
    if (saved > 0) (this.savings ??= metrics.cacheSavingsUsd.labels({ mode, model, upstream })).inc(saved);
  }

  /** Seconds from the upstream request sent to the first content event of a stream. */
  ttft(seconds: number): void {
    (this.firstToken ??= this.metrics.ttft.labels({ mode: this.mode, model: this.model, upstream: this.upstream })).observe(seconds);
  }

  /** The calls of this (mode, model, upstream) to `endpoint`. */
  endpoint(endpoint: string): CallSeries {
    // No callback to a shared get-or-create: a closure per call would allocate on every request.
    let series = this.endpoints.get(endpoint);
    if (series === undefined) {
      series = new CallSeries(this.metrics, endpoint, this);
      this.endpoints.set(endpoint, series);
    }
    return series;
  }
}

/** The series of one (endpoint, mode, model, upstream): calls by status, and their duration. */
export class CallSeries {
  private readonly byStatus = new Map<string, CounterSeries>();
  private durationSeries: HistogramSeries | undefined;

  constructor(
    private readonly metrics: SeriesMetrics,
    private readonly endpointName: string,
    readonly of: ModelSeries,
  ) {}

  /** One upstream call ended with `status` (an HTTP status, `error` or `aborted`: a bounded set). */
  call(status: string): void {
    let series = this.byStatus.get(status);
    if (series === undefined) {
      const of = this.of;
      series = this.metrics.apiCalls.labels({ endpoint: this.endpointName, mode: of.mode, model: of.model, status, upstream: of.upstream });
      this.byStatus.set(status, series);
    }
    series.inc();
  }

  /** Seconds from the upstream request sent to the body ended or failed. */
  duration(seconds: number): void {
    const { metrics, endpointName: endpoint, of } = this;
    (this.durationSeries ??= metrics.apiDuration.labels({ endpoint, mode: of.mode, model: of.model, upstream: of.upstream })).observe(seconds);
  }
}

/** The two series of one answered request (method, route, status): written together, so resolved together. */
export interface HttpSeries {
  readonly requests: CounterSeries;
  readonly duration: HistogramSeries;
}

/** Tables of series by label values, one Map per label. */
export class SeriesTables {
  private readonly models = new Map<string, Map<string, Map<string, ModelSeries>>>();
  private readonly http = new Map<string, Map<string, Map<string, HttpSeries>>>();

  constructor(
    private readonly metrics: SeriesMetrics,
    private readonly pricesOf: (upstream: string) => PriceTable,
  ) {}

  model(mode: string, model: string, upstream: string): ModelSeries {
    const byUpstream = level(level(this.models, mode), model);
    let series = byUpstream.get(upstream);
    if (series === undefined) {
      series = new ModelSeries(this.metrics, this.pricesOf(upstream), mode, model, upstream);
      byUpstream.set(upstream, series);
    }
    return series;
  }

  /** `method` is one Node's parser accepted (a fixed set), `route` a routeLabel, `status` an HTTP status or 499. */
  request(method: string, route: string, status: string): HttpSeries {
    const byStatus = level(level(this.http, method), route);
    let series = byStatus.get(status);
    if (series === undefined) {
      series = { requests: this.metrics.httpRequests.labels({ method, route, status }), duration: this.metrics.httpDuration.labels({ method, route, status }) };
      byStatus.set(status, series);
    }
    return series;
  }
}
