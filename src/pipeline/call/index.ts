import type { GatewayMetrics } from '../../observability/metrics.js';
import type { Logger } from '../../observability/logger.js';
import type { RequestTracing } from '../../observability/tracing.js';
import type { UpstreamSet } from '../../upstream/upstreams.js';
import type { RetryBudget, RetryPolicy } from '../../upstream/retry.js';
import type { CacheAffinity } from '../affinity/cache-affinity.js';
import type { Breakers } from '../breaker.js';
import type { SharedFlights } from '../coalesce/shared-flights.js';
import { admit } from './admit.js';
import { compose, type Dispatch, type RoutedCall, type UpstreamCall } from './chain.js';
import { meter } from './meter.js';
import { reportBrokenAnswers } from './report.js';
import { retry } from './retry.js';
import { rewrite } from './rewrite.js';
import { route } from './route.js';
import { share } from './share.js';
import { trace } from './trace.js';
import { transport } from './transport.js';

export type { CallContext, Dispatch, InnerInterceptor, InnerObserver, Interceptor, Observe, Observer, OuterInterceptor, OuterObserver, RouteDecision, RoutedCall, RouteInterceptor, UpstreamCall } from './chain.js';
export type { CallFacts } from './facts.js';

export interface UpstreamChainDeps {
  upstreams: UpstreamSet;
  /** Upstream attempts one call may make in total, failover moves and retries together (FAILOVER_MAX_ATTEMPTS). */
  failoverMaxAttempts: number;
  breakers: Breakers;
  metrics: GatewayMetrics;
  logger: Logger;
  tracing: RequestTracing;
  retryPolicy: RetryPolicy;
  retryBudget: RetryBudget;
  /** Cross-instance coalescing (REDIS_URL), if configured. */
  shared: SharedFlights | undefined;
  maxSseEventBytes: number;
  breakerProbeTimeoutMs: number;
  /** Cache-affinity routing (CACHE_AFFINITY), if on. */
  affinity?: CacheAffinity | undefined;
}

/**
 * The only place the order of the upstream call's interceptors is written (outer to inner):
 *   meter (usage, accounting) → report (broken answers) → share (other instances) → route (upstreams,
 *   failover) → admit (breaker) → trace (span) → rewrite (batch results_url) → retry (budgeted) → transport (undici).
 * The meter is outermost so that it reads relayed answers too; the breaker is inside share so that a
 * relayed answer never counts for this instance's breakers; the route is outside the breaker so that
 * each upstream's breaker judges only its own attempts, and inside share so that a call that failed
 * over is still one shared call; retries are inside the breaker so that one attempt is one outcome,
 * however many tries it took.
 * The compiler checks the split: the outer list takes `UpstreamCall`s, the inner one `RoutedCall`s,
 * and only the route joins them (chain.ts). Meter, report, trace (and share without a store) are
 * observers: neighbouring ones run as one synchronous step, so with no store the whole outer list is
 * one step in front of the route, and the awaited chain is route → retry → transport (admit waits
 * only for a probe, rewrite only for a call that asks, retry only for a call it may retry).
 */
export function upstreamChain(deps: UpstreamChainDeps): Dispatch {
  const attempt = compose<RoutedCall>(
    [admit(deps.breakers, deps.breakerProbeTimeoutMs), trace(deps.tracing), rewrite(), retry(deps.retryPolicy, deps.retryBudget, deps.metrics)],
    transport(),
  );
  const routed = route({ upstreams: deps.upstreams, maxAttempts: deps.failoverMaxAttempts, budget: deps.retryBudget, metrics: deps.metrics, affinity: deps.affinity })(attempt);
  return compose<UpstreamCall>([meter(deps.metrics, deps.maxSseEventBytes), reportBrokenAnswers(deps.logger), share(deps.shared)], routed);
}
