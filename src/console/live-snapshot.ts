/**
 * What the console's pages read (GET /console/api/live): declared once, for the server that builds it
 * (console/live.ts) and the browser modules that show it (console/browser/). Types only, no imports:
 * the browser build compiles this file too.
 */

/** A breaker as the console shows it (pipeline/breaker.ts `Breakers.snapshot`). */
export interface BreakerView {
  readonly breaker: string;
  readonly state: 'closed' | 'halfOpen' | 'open';
  /** Seconds until an open breaker lets its probe through. */
  readonly probeInSeconds: number | undefined;
}

/** An upstream's rate-limit headroom as its answers' `anthropic-ratelimit-*` headers report it. */
export interface HeadroomView {
  readonly upstream: string;
  readonly kind: string;
  readonly tier: number;
  /** 0..1: the share of its limit left (1 when unknown). */
  readonly headroom: number;
  /** Milliseconds the key still rests after a 429 (0: not resting). */
  readonly restingMs: number;
}

export interface Quantiles {
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly count: number;
}

/**
 * One reading of the gateway, every number a value of its /metrics at that moment (counters are
 * totals since start: rates are the differences between two readings, taken by the page).
 */
export interface LiveSnapshot {
  readonly at: number;
  readonly overview: {
    readonly requests: number;
    readonly serverErrors: number;
    readonly activeRequests: number;
    readonly upstreamCalls: number;
    readonly coalesced: number;
    readonly lingerCatchUp: number;
    readonly cacheHits: number;
    /** claude_tokens_saved_total by source (coalesced: joined or lingering; cache). */
    readonly tokensSaved: Readonly<Record<string, number>>;
    /** claude_cost_saved_usd_total: the saved tokens at their model's list price. */
    readonly usdSaved: number;
    readonly usdBilled: number;
    readonly ttftSeconds: Quantiles;
    readonly overheadSeconds: Quantiles;
  };
  readonly upstreams: {
    readonly breakers: readonly BreakerView[];
    readonly headroom: readonly HeadroomView[];
    /** claude_api_calls_total by upstream and status. */
    readonly calls: readonly { readonly upstream: string; readonly status: string; readonly count: number }[];
    readonly failovers: readonly { readonly from: string; readonly to: string; readonly reason: string; readonly count: number }[];
    readonly poolQueued: number;
    readonly poolWaitTimeouts: number;
  };
}

