import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { BreakerView, HeadroomView, LiveSnapshot, Quantiles } from './live-snapshot.js';
import { breakerStateName, STATE_VALUE } from '../pipeline/breaker.js';

export type { BreakerView, HeadroomView, LiveSnapshot } from './live-snapshot.js';

/** What the live pages read. */
export interface LiveSources {
  /** The gateway's metrics as a registry's getMetricsAsJSON() gives them: with WORKERS > 1, every worker's, aggregated. */
  readonly metrics: () => Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  readonly breakers: () => readonly BreakerView[];
  readonly headroom: () => readonly HeadroomView[];
}

/** A series value; histogram series name their part (`_bucket`, `_sum`, `_count`). */
type Value = MetricValue<string> & { metricName?: string };
type Metrics = ReadonlyMap<string, MetricObjectWithValues<Value>>;

/**
 * Builds snapshots at most once per `minIntervalMs` (every open page polls; N pages cost one
 * reading), so the console's cost to the gateway is bounded whatever the number of viewers.
 */
export class LiveReadings {
  private last: { at: number; snapshot: Promise<LiveSnapshot> } | undefined;

  constructor(
    private readonly sources: LiveSources,
    private readonly minIntervalMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  read(): Promise<LiveSnapshot> {
    const now = this.now();
    if (this.last !== undefined && now - this.last.at < this.minIntervalMs) return this.last.snapshot;
    const snapshot = this.take(now);
    this.last = { at: now, snapshot };
    // A failed reading is not kept: the next poll tries again.
    snapshot.catch(() => (this.last = undefined));
    return snapshot;
  }

  private async take(at: number): Promise<LiveSnapshot> {
    const metrics: Metrics = new Map((await this.sources.metrics()).map((m) => [m.name, m as MetricObjectWithValues<Value>]));
    const tokensSaved: Record<string, number> = {};
    for (const v of values(metrics, 'claude_tokens_saved_total')) {
      const source = String(v.labels.source);
      tokensSaved[source] = (tokensSaved[source] ?? 0) + v.value;
    }
    return {
      at,
      overview: {
        requests: sum(metrics, 'http_requests_total'),
        serverErrors: sum(metrics, 'http_requests_total', (l) => Number(l.status) >= 500),
        activeRequests: sum(metrics, 'http_active_requests'),
        upstreamCalls: sum(metrics, 'claude_api_calls_total'),
        coalesced: sum(metrics, 'coalesced_requests_total'),
        lingerCatchUp: sum(metrics, 'coalesce_linger_catchup_total'),
        cacheHits: sum(metrics, 'cache_hits_total'),
        tokensSaved,
        usdSaved: sum(metrics, 'claude_cost_saved_usd_total'),
        usdBilled: sum(metrics, 'claude_cost_usd_total'),
        ttftSeconds: quantiles(metrics, 'claude_api_ttft_seconds'),
        overheadSeconds: quantiles(metrics, 'gateway_overhead_seconds'),
      },
      upstreams: {
        breakers: mergedBreakers(this.sources.breakers(), metrics),
        headroom: this.sources.headroom(),
        calls: grouped(metrics, 'claude_api_calls_total', ['upstream', 'status']).map(({ labels: [upstream = '', status = ''], count }) => ({ upstream, status, count })),
        failovers: grouped(metrics, 'upstream_failovers_total', ['from', 'to', 'reason']).map(({ labels: [from = '', to = '', reason = ''], count }) => ({ from, to, reason, count })),
        poolQueued: sum(metrics, 'upstream_pool_queued_requests'),
        poolWaitTimeouts: sum(metrics, 'upstream_pool_wait_timeouts_total'),
      },
    };
  }
}

/**
 * The breakers as the console shows them: this process's own (with when an open one lets its probe
 * through), each at least as open as `circuit_breaker_state` in the reading says. With WORKERS > 1 the
 * reading is the whole gateway's, the most open state of each breaker in any worker: a breaker
 * another worker opened shows open here too (without a probe time: that worker's to know), and one
 * only another worker has made is listed after this process's.
 */
function mergedBreakers(own: readonly BreakerView[], metrics: Metrics): readonly BreakerView[] {
  const worst = new Map<string, number>();
  for (const v of values(metrics, 'circuit_breaker_state')) {
    const label = String(v.labels.breaker);
    worst.set(label, Math.max(v.value, worst.get(label) ?? 0));
  }
  const shown = own.map((view) => {
    const value = worst.get(view.breaker) ?? STATE_VALUE.closed;
    return value > STATE_VALUE[view.state] ? { breaker: view.breaker, state: breakerStateName(value), probeInSeconds: undefined } : view;
  });
  const listed = new Set(own.map((view) => view.breaker));
  for (const [breaker, value] of [...worst].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!listed.has(breaker)) shown.push({ breaker, state: breakerStateName(value), probeInSeconds: undefined });
  }
  return shown;
}

function values(metrics: Metrics, name: string): readonly Value[] {
  return metrics.get(name)?.values ?? [];
}

function sum(metrics: Metrics, name: string, where: (labels: Partial<Record<string, string | number>>) => boolean = () => true): number {
  let total = 0;
  for (const v of values(metrics, name)) if (v.metricName === undefined || v.metricName === name) if (where(v.labels)) total += v.value;
  return total;
}

/** Sums of a counter grouped by some of its labels. */
function grouped(metrics: Metrics, name: string, by: readonly string[]): { labels: string[]; count: number }[] {
  const groups = new Map<string, { labels: string[]; count: number }>();
  for (const v of values(metrics, name)) {
    const labels = by.map((l) => String(v.labels[l] ?? ''));
    const key = labels.join('\0');
    const row = groups.get(key) ?? { labels, count: 0 };
    row.count += v.value;
    groups.set(key, row);
  }
  return [...groups.values()];
}

/**
 * p50 and p95 of a histogram over all its series, as Prometheus' histogram_quantile computes them
 * (linear within the bucket; the highest finite bound when the rank falls in +Inf).
 */
function quantiles(metrics: Metrics, name: string): Quantiles {
  const buckets = new Map<number, number>();
  for (const v of values(metrics, name)) {
    if (v.metricName !== `${name}_bucket`) continue;
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + v.value);
  }
  const sorted = [...buckets.entries()].sort(([a], [b]) => a - b);
  const count = sorted.at(-1)?.[1] ?? 0;
  return { p50: quantile(sorted, count, 0.5), p95: quantile(sorted, count, 0.95), count };
}

function quantile(sorted: readonly (readonly [number, number])[], count: number, q: number): number | undefined {
  if (count === 0) return undefined;
  const rank = q * count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, cumulative] of sorted) {
    if (cumulative >= rank) {
      if (le === Infinity) return lowerBound;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / Math.max(cumulative - lowerCount, 1e-12);
    }
    lowerBound = le;
    lowerCount = cumulative;
  }
  return lowerBound;
}
