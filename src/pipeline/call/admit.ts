import { ERRORS, GatewayError } from '../../core/errors.js';
import { isAbort, translateUpstreamError } from '../../upstream/client.js';
import type { CallOutcome } from '../coalesce/flight.js';
import type { Breakers } from '../breaker.js';
import type { InnerInterceptor } from './chain.js';
import type { CallFacts } from './facts.js';

/**
 * Breaker admission. Every admitted call holds a permit that settles exactly once:
 * - at the call's end (the flight's `finally`), as failure only for what the upstream did wrong;
 * - a half-open probe settles as soon as its head arrives (the upstream has answered), and fails
 *   if no head came within `probeTimeoutMs`: a probe can never hold a breaker half-open for long.
 */

/** How a finished call ended, as far as a breaker cares. */
export type CallEnd =
  | 'answered'
  | 'abandoned'
  | 'refused_by_gateway'
  | 'blames_request'
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'upstream_failed'
  | 'stream_broke';

export interface BreakerRule {
  /** Whether this end counts as a failure of the breaker's (upstream, model). */
  readonly counts: boolean;
  /** Why: the README's Resilience table says the same. */
  readonly why: string;
}

/**
 * Breaker accounting, the one table: which ends count against the breaker of (upstream, model),
 * a breaker every tenant shares, and why. The rule behind it: only what the upstream did counts,
 * and nothing one client can cause by what it sends. `upstreamFault` and the probe read it; README
 * (Resilience) mirrors it.
 */
export const BREAKER_ACCOUNTING: Readonly<Record<CallEnd, BreakerRule>> = {
  answered: { counts: false, why: 'the upstream answered (1xx-3xx)' },
  abandoned: { counts: false, why: 'every client left before the end: a slow upstream and an impatient client look the same' },
  refused_by_gateway: {
    counts: false,
    why: 'the gateway refused the request itself (bad JSON, a model that is not a model id, a body a provider cannot take, an argument undici rejects, no free connection): the upstream did nothing',
  },
  blames_request: {
    counts: false,
    why: "a 4xx other than 429 blames the request (bad body, unknown model, the client's own key in pass-through): that client's failure only",
  },
  rate_limited: { counts: false, why: '429 is about one key and passes through with its retry-after (a gateway-held key moves the call on instead)' },
  overloaded: { counts: true, why: '529: the upstream is overloaded for everyone' },
  server_error: {
    counts: true,
    why: "5xx: the upstream failed. A provider's rejection of the gateway's own credential is a 502 here: no client input reaches the credential or the signature (adapters forward only their header allowlists, the model id is checked first), so it is the gateway's credential failing",
  },
  upstream_failed: { counts: true, why: 'no usable answer: connection refused or lost, a timeout, an invalid answer, credentials that cannot be had' },
  stream_broke: { counts: true, why: 'a stream that broke after its head: cut, an `error` event, an oversized event' },
};

/**
 * Whether an error says the upstream failed (`upstream_failed`, else `refused_by_gateway`).
 * GatewayErrors by their code's `breaker` column in ERRORS (core/errors.ts); a coded transport error
 * (undici, sockets, decompression) raised while the body streamed counts; an abort, or an error
 * of the gateway's own (no code), never does.
 */
export function isUpstreamFailure(error: unknown): boolean {
  if (error instanceof GatewayError) return ERRORS[error.code].breaker;
  if (isAbort(error)) return false;
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string';
}

/** How an answer's status ends a call. */
export function statusEnd(status: number): CallEnd {
  if (status < 400) return 'answered';
  if (status === 429) return 'rate_limited';
  if (status === 529) return 'overloaded';
  if (status >= 500) return 'server_error';
  return 'blames_request';
}

/** How a finished call ended. */
export function callEnd(outcome: CallOutcome, facts: CallFacts): CallEnd {
  if (outcome.abandoned) return 'abandoned';
  if (outcome.error !== undefined) return isUpstreamFailure(outcome.error) ? 'upstream_failed' : 'refused_by_gateway';
  const status = outcome.head?.status;
  const byStatus = status === undefined ? 'answered' : statusEnd(status);
  if (byStatus !== 'answered') return byStatus;
  return facts.meter?.streamErrorType === undefined ? 'answered' : 'stream_broke';
}

/** The breaker's verdict on a finished call (BREAKER_ACCOUNTING): a reason when it counts, undefined when it does not. */
export function upstreamFault(outcome: CallOutcome, facts: CallFacts): string | undefined {
  const end = callEnd(outcome, facts);
  if (!BREAKER_ACCOUNTING[end].counts) return undefined;
  if (end === 'upstream_failed') return translateUpstreamError(outcome.error, 'body').code;
  if (end === 'stream_broke') return `upstream stream error: ${facts.meter?.streamErrorType ?? ''}`;
  return `upstream answered ${outcome.head?.status ?? ''}`;
}

export function admit(breakers: Breakers, probeTimeoutMs: number): InnerInterceptor {
  return (next) => (call, ctx) => {
    const permit = breakers.admit(call.upstream.name, call.model, call.endpoint);
    const probeTimer = permit.probe ? setTimeout(() => permit.fail(new Error(`probe got no answer within ${probeTimeoutMs} ms`)), probeTimeoutMs).unref() : undefined;
    ctx.finally((outcome) => {
      clearTimeout(probeTimer);
      const fault = upstreamFault(outcome, ctx.facts);
      if (fault === undefined) permit.succeed();
      else permit.fail(new Error(fault));
    });
    // An ordinary call passes straight through (no promise of its own); only a probe waits for its head.
    if (!permit.probe) return next(call, ctx);
    return next(call, ctx).then((answer) => {
      clearTimeout(probeTimer);
      if (BREAKER_ACCOUNTING[statusEnd(answer.head.status)].counts) permit.fail(new Error(`upstream answered ${answer.head.status}`));
      else permit.succeed();
      return answer;
    });
  };
}
