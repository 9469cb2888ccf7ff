import { ERRORS, GatewayError } from '../../core/errors.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { backoffMs, requestedDelayMs, sleep, type RetryBudget, type RetryPolicy } from '../../upstream/retry.js';
import type { FlightSource } from '../coalesce/flight.js';
import type { CallContext, Dispatch, InnerInterceptor, RoutedCall } from './chain.js';

/**
 * Safe retries. The SDK already retries (2 by default), so the gateway retries only what is
 * provably safe and cheap: a connection that was never established (nothing reached upstream),
 * and, when configured, a 529 overloaded answer. Always before any byte reached a client, never
 * for a body that cannot be replayed, and only while the retry budget allows: during an outage
 * retries cannot multiply the load. Every wait is bounded (`maxDelayMs`) and ends with the signal.
 * When the route has another upstream to try (`call.alternatives > 0`), failing over is the retry:
 * nothing is retried here. A retry is one more of the call's attempts (`call.attempts`, spent by the
 * transport): none is made once the call has used FAILOVER_MAX_ATTEMPTS across upstreams and retries.
 * The route deposits into the budget once per call.
 */
export function retry(policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics): InnerInterceptor {
  // Nothing is ever retried: not in the chain at all.
  if (policy.maxRetries <= 0) return (next) => next;
  return (next) => (call, ctx) => {
    // A call that may not be retried (a body that cannot be replayed, or the route has an upstream to move to) passes straight through: no promise of its own.
    const replayable = (call.body === null || Buffer.isBuffer(call.body)) && call.alternatives === 0;
    return replayable ? retried(policy, budget, metrics, next, call, ctx) : next(call, ctx);
  };
}

/** A replayable call's attempts at one upstream: retried while the policy, the budget and the call's attempts allow. */
async function retried(policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics, next: Dispatch<RoutedCall>, call: RoutedCall, ctx: CallContext): Promise<FlightSource> {
  for (let attempt = 0; ; attempt++) {
    let answer;
    try {
      answer = await next(call, ctx);
    } catch (err) {
      // Retryable: the code's `retryable` column in ERRORS (core/errors.ts).
      if (!(err instanceof GatewayError && ERRORS[err.code].retryable && mayRetry(call, policy, attempt) && budget.tryWithdraw())) throw err;
      // A retryable code also fails over (test/unit/errors-table.test.ts): its failover reason names the retry (`connect`).
      metrics.upstreamRetries.inc({ reason: ERRORS[err.code].failover ?? err.code });
      await sleep(backoffMs(attempt, policy), ctx.signal);
      continue;
    }
    if (answer.head.status === 529 && policy.onOverloaded && mayRetry(call, policy, attempt)) {
      const asked = requestedDelayMs(answer.head.headers);
      // An upstream asking for a longer wait than we would ever sleep: pass its answer on.
      const delay = asked ?? backoffMs(attempt, policy);
      if (delay <= policy.maxDelayMs && budget.tryWithdraw()) {
        metrics.upstreamRetries.inc({ reason: 'overloaded' });
        discard(answer.body);
        await sleep(delay, ctx.signal);
        continue;
      }
    }
    return answer;
  }
}

/** Asked after an attempt was made (and spent its own): a retry needs the policy's leave and one more of the call's attempts. */
function mayRetry(call: RoutedCall, policy: RetryPolicy, attempt: number): boolean {
  return attempt < policy.maxRetries && call.attempts.left > 0;
}

/** Reads an unwanted answer body to its end so its socket goes back to the pool (a 529 body is small; undici's body timeout bounds it). */
function discard(body: unknown): void {
  const stream = body as { resume?: () => void };
  stream.resume?.();
}
