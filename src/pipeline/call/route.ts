import { GatewayError, asError } from '../../core/errors.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { isAbort } from '../../upstream/client.js';
import type { RetryBudget } from '../../upstream/retry.js';
import type { Plan, Upstream, UpstreamSet } from '../../upstream/upstreams.js';
import { recordAttempt } from '../accounting.js';
import type { CacheAffinity } from '../affinity/cache-affinity.js';
import type { FlightSource } from '../coalesce/flight.js';
import { AttemptScope } from './attempt.js';
import { AttemptLimit } from './attempt-limit.js';
import type { CallContext, RoutedCall, RouteInterceptor, UpstreamCall } from './chain.js';
import type { CallFacts } from './facts.js';
import { answerReason, errorReason, mayMove, nextMove, type FailoverReason } from './failover-policy.js';
import { peekFirstEvent } from './first-event.js';

/**
 * Routing and failover, the interceptor. The route plans which upstreams may serve the call
 * (upstream/upstreams.ts: tiers, weights, headroom, rested keys, what each kind serves) and tries
 * them in order, each attempt in its own scope (attempt.ts) with its own breaker permit, span and
 * outcome, handing each one inward as a `RoutedCall`. What to do after an attempt (stop, move, move
 * if the retry budget pays) is the failover policy's (failover-policy.ts, pure): the route only
 * runs it, withdraws from the budget when a move must be paid, peeks at a stream's first event when
 * a move is possible, and counts the moves. The call's attempts are one count (attempt-limit.ts)
 * that the route's moves and the retry interceptor's retries both spend, so a call makes at most
 * FAILOVER_MAX_ATTEMPTS attempts whatever the retry settings. Each upstream sees at most one
 * attempt per call, except the last one tried (no upstream left to move to), which the retry
 * interceptor may retry while attempts are left; so a move to another host cannot multiply anyone's
 * load. The flight around the route makes the whole thing one call: followers only ever see the
 * answer that is finally accepted. When every candidate's breaker is open, the answer is the
 * overload answer with the earliest retry-after of them. With cache affinity, the candidate that
 * holds the call's cached prompt head warm goes first when it is healthy (pipeline/affinity/), and
 * the upstream whose 2xx answer is accepted becomes the one that holds it.
 */

export interface RouteOptions {
  upstreams: UpstreamSet;
  maxAttempts: number;
  budget: RetryBudget;
  metrics: GatewayMetrics;
  /** Cache-affinity routing (CACHE_AFFINITY): which candidate goes first for a call with a cached head. */
  affinity?: CacheAffinity | undefined;
}

export { UPSTREAM_HEADER } from '../../upstream/header-list.js';

/** The answer with `x-gateway-upstream` naming who served it (an upstream's own `x-gateway-*` headers never get this far: upstream/headers.ts); written after the headers, the list is not copied. */
function labelled(answer: FlightSource, name: string): FlightSource {
  const { status, headers, eventStream } = answer.head;
  return { head: { status, headers, eventStream, upstream: name }, body: answer.body };
}

/**
 * Drains an answer body nobody will read, so its socket goes back to the pool (error answers are
 * small; undici's body timeout bounds a stalled one). A peeked stream is closed instead.
 */
function dispose(body: FlightSource['body']): void {
  const source = body as Partial<NodeJS.ReadableStream> & { [Symbol.asyncIterator]?: () => AsyncIterator<Buffer> };
  if (typeof source.resume === 'function' && typeof source.on === 'function') {
    source.on('error', () => undefined);
    source.resume();
  } else {
    void source[Symbol.asyncIterator]?.().return?.(undefined).catch(() => undefined);
  }
}

function retryAfterOf(err: GatewayError): number {
  const seconds = Number(err.headers['retry-after']);
  return Number.isFinite(seconds) ? seconds : Number.POSITIVE_INFINITY;
}

export function route(options: RouteOptions): RouteInterceptor {
  const { upstreams, maxAttempts, budget, metrics, affinity } = options;
  const moved = (from: Upstream, to: Upstream | undefined, reason: FailoverReason): void => {
    if (to !== undefined) metrics.upstreamFailovers.inc({ from: from.name, to: to.name, reason });
  };
  /**
   * A discarded attempt that was sent is an upstream call of its own (counted here, under its
   * upstream and status); the clocks are reset so that the call's own record, at the flight's end,
   * describes only the attempt that was accepted (or none).
   */
  const forget = (call: UpstreamCall, facts: CallFacts, upstream: Upstream, status: string): void => {
    if (facts.sentAt !== undefined) recordAttempt(metrics, call, upstream.name, status);
    facts.sentAt = undefined;
    facts.headersAt = undefined;
  };

  return (next) => {
    /**
     * One candidate (the common case): nothing to reorder, fail over to or peek, so no async frame
     * of its own: the attempt's promise, continued once. Anything thrown before it is sent is a
     * rejection, as from an async function.
     */
    const only = (call: UpstreamCall, ctx: CallContext, upstream: Upstream): Promise<FlightSource> => {
      ctx.facts.upstream = upstream.name;
      return next(routed(call, upstream, 0, new AttemptLimit(maxAttempts)), ctx).then((answer) => {
        upstream.note(answer.head.status, answer.head.headers);
        return labelled(answer, upstream.name);
      });
    };
    const failover = async (call: UpstreamCall, ctx: CallContext, plan: Plan): Promise<FlightSource> => {
      const refusal = plan.refusal;
      // Affinity only reorders the plan: who may serve, tiers and health stay the plan's (pipeline/affinity/).
      const candidates = affinity === undefined || call.affinity === undefined || plan.candidates.length < 2 ? plan.candidates : await affinity.order(call, plan.candidates);
      if (candidates.length === 0) throw new GatewayError('NO_UPSTREAM', refusal ?? 'No configured upstream serves this request');
      if (candidates.length === 1) return only(call, ctx, candidates[0] as Upstream);
      return attemptEach(call, ctx, candidates, refusal);
    };
    const attemptEach = async (call: UpstreamCall, ctx: CallContext, candidates: readonly Upstream[], refusal: string | undefined): Promise<FlightSource> => {
      const attempts = new AttemptLimit(maxAttempts);
      const replayable = call.body === null || Buffer.isBuffer(call.body);
      let lastError: Error | undefined;
      let earliestOpen: GatewayError | undefined;
      for (let i = 0; i < candidates.length; i++) {
        const upstream = candidates[i] as Upstream;
        const after = candidates[i + 1];
        // Whether this attempt may still be followed by a real move (the breaker check is free and needs none of this).
        const movable = mayMove(replayable, after !== undefined, attempts.left);
        ctx.facts.upstream = upstream.name;
        const attempt = new AttemptScope(ctx);
        let answer: FlightSource;
        try {
          answer = await next(routed(call, upstream, movable ? candidates.length - 1 - i : 0, attempts), attempt);
        } catch (err) {
          attempt.discard({ head: undefined, error: err, complete: false, abandoned: isAbort(err), subscribers: 0 });
          const move = nextMove(errorReason(err), upstream, after, movable);
          if (move.kind === 'stop' || (move.paid && !budget.tryWithdraw())) throw err;
          if (move.reason === 'circuit_open') {
            const open = err as GatewayError;
            if (earliestOpen === undefined || retryAfterOf(open) < retryAfterOf(earliestOpen)) earliestOpen = open;
          } else {
            lastError = err as GatewayError;
            forget(call, ctx.facts, upstream, 'error');
          }
          moved(upstream, after, move.reason);
          continue;
        }
        upstream.note(answer.head.status, answer.head.headers);
        let reason = answerReason(answer.head.status, upstream);
        let discard = (): void => dispose(answer.body);
        if (reason === undefined && movable && answer.head.eventStream && answer.head.status < 300) {
          try {
            const peeked = await peekFirstEvent(answer.body);
            answer = { head: answer.head, body: peeked.body };
            discard = () => peeked.discard();
            if (peeked.error) reason = 'stream_error';
          } catch (err) {
            // The stream broke before its first event: a failure before any byte reached a client.
            attempt.discard({ head: answer.head, error: err, complete: false, abandoned: isAbort(err), subscribers: 0 });
            const move = nextMove(isAbort(err) ? undefined : 'unreachable', upstream, after, movable);
            if (move.kind === 'stop' || (move.paid && !budget.tryWithdraw())) throw err;
            lastError = asError(err);
            forget(call, ctx.facts, upstream, 'error');
            moved(upstream, after, move.reason);
            continue;
          }
        }
        const move = nextMove(reason, upstream, after, movable);
        if (move.kind === 'stop' || (move.paid && !budget.tryWithdraw())) {
          attempt.accept();
          if (answer.head.status < 300) affinity?.served(call, upstream.name);
          return labelled(answer, upstream.name);
        }
        discard();
        const failed = move.reason === 'stream_error' ? new GatewayError('UPSTREAM_RESPONSE_INVALID', 'Upstream stream began with an error event') : undefined;
        attempt.discard({ head: answer.head, error: failed, complete: failed === undefined, abandoned: false, subscribers: 0 });
        forget(call, ctx.facts, upstream, move.reason === 'stream_error' ? 'error' : String(answer.head.status));
        lastError = undefined;
        moved(upstream, after, move.reason);
      }
      if (lastError !== undefined) throw lastError;
      throw earliestOpen ?? new GatewayError('NO_UPSTREAM', refusal ?? 'No configured upstream serves this request');
    };
    return (call, ctx) => {
      try {
        budget.onRequest();
        const plan = upstreams.plan(call);
        return plan.candidates.length === 1 ? only(call, ctx, plan.candidates[0] as Upstream) : failover(call, ctx, plan);
      } catch (err) {
        return Promise.reject(asError(err));
      }
    };
  };
}

/** The call with the route's decisions for one attempt (every field named: one object of one shape, no spread). */
function routed(call: UpstreamCall, upstream: Upstream, alternatives: number, attempts: AttemptLimit): RoutedCall {
  return {
    method: call.method,
    path: call.path,
    headers: call.headers,
    body: call.body,
    endpoint: call.endpoint,
    mode: call.mode,
    model: call.model,
    sharedKey: call.sharedKey,
    affinity: call.affinity,
    rewriteJson: call.rewriteJson,
    parentSpan: call.parentSpan,
    upstream,
    alternatives,
    attempts,
  };
}
