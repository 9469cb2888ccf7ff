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

/**
 * A replayable call's attempts at one upstream: retried while the policy, the budget and the call's
 * attempts allow. The first attempt's promise is continued once (no async frame): only a call that
 * is retried enters the loop.
 */
function retried(policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics, next: Dispatch<RoutedCall>, call: RoutedCall, ctx: CallContext): Promise<FlightSource> {
  let first: Promise<FlightSource>;
  try {
    first = next(call, ctx);
  } catch (err) {
    // As from the async loop: a throw is a failed attempt like a rejection (a dispatch never throws).
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passed on as thrown, as the loop's `throw err` does
    first = Promise.reject(err);
  }
  const onError = (err: unknown): Promise<FlightSource> => {
    const delay = retryAfterError(err, policy, budget, metrics, call, 0);
    if (delay === undefined) throw err;
    return retriedAfter(delay, 1, policy, budget, metrics, next, call, ctx);
  };
  // Only a 529 is ever retried, and only with RETRY_ON_OVERLOADED: otherwise an answer passes through this continuation untouched.
  if (!policy.onOverloaded) return first.then(undefined, onError);
  const onAnswer = (answer: FlightSource): FlightSource | Promise<FlightSource> => {
    const delay = retryAfterAnswer(answer, policy, budget, metrics, call, 0);
    return delay === undefined ? answer : retriedAfter(delay, 1, policy, budget, metrics, next, call, ctx);
  };
  return first.then(onAnswer, onError);
}

/** The retries, from attempt `from` on, after waiting `delay` ms for the first of them. */
async function retriedAfter(delay: number, from: number, policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics, next: Dispatch<RoutedCall>, call: RoutedCall, ctx: CallContext): Promise<FlightSource> {
  await sleep(delay, ctx.signal);
  for (let attempt = from; ; attempt++) {
    let answer;
    try {
      answer = await next(call, ctx);
    } catch (err) {
      const wait = retryAfterError(err, policy, budget, metrics, call, attempt);
      if (wait === undefined) throw err;
      await sleep(wait, ctx.signal);
      continue;
    }
    const wait = retryAfterAnswer(answer, policy, budget, metrics, call, attempt);
    if (wait === undefined) return answer;
    await sleep(wait, ctx.signal);
  }
}

/** After attempt `attempt` failed with `err`: the wait before its retry (counted, paid from the budget), or undefined to pass the failure on. */
function retryAfterError(err: unknown, policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics, call: RoutedCall, attempt: number): number | undefined {
  // Retryable: the code's `retryable` column in ERRORS (core/errors.ts).
  if (!(err instanceof GatewayError && ERRORS[err.code].retryable && mayRetry(call, policy, attempt) && budget.tryWithdraw())) return undefined;
  // A retryable code also fails over (test/unit/errors-table.test.ts): its failover reason names the retry (`connect`).
  metrics.upstreamRetries.inc({ reason: ERRORS[err.code].failover ?? err.code });
  return backoffMs(attempt, policy);
}

/** After attempt `attempt` answered: the wait before a retry of a 529 (counted, paid, its body drained), or undefined to pass the answer on. */
function retryAfterAnswer(answer: FlightSource, policy: RetryPolicy, budget: RetryBudget, metrics: GatewayMetrics, call: RoutedCall, attempt: number): number | undefined {
  if (!(answer.head.status === 529 && policy.onOverloaded && mayRetry(call, policy, attempt))) return undefined;
  const asked = requestedDelayMs(answer.head.headers);
  // An upstream asking for a longer wait than we would ever sleep: pass its answer on.
  const delay = asked ?? backoffMs(attempt, policy);
  if (delay > policy.maxDelayMs || !budget.tryWithdraw()) return undefined;
  metrics.upstreamRetries.inc({ reason: 'overloaded' });
  discard(answer.body);
  return delay;
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
