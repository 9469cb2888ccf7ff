import { GatewayError } from '../../errors.js';
import { isAbort, translateUpstreamError } from '../../upstream/client.js';
import type { CallOutcome } from '../coalesce/flight.js';
import type { Breakers } from '../breaker.js';
import type { CallFacts, Interceptor } from './chain.js';

/**
 * Breaker admission. Every admitted call holds a permit that settles exactly once:
 * - at the call's end (the flight's `finally`), as failure only for what the upstream did wrong;
 * - a half-open probe settles as soon as its head arrives (the upstream has answered), and fails
 *   if no head came within `probeTimeoutMs`: a probe can never hold a breaker half-open for long.
 */

/** Gateway errors that say something about the upstream's health. Anything the gateway raised itself does not. */
const UPSTREAM_FAILURES = new Set(['UPSTREAM_UNREACHABLE', 'UPSTREAM_CONNECT_FAILED', 'UPSTREAM_HEADERS_TIMEOUT', 'UPSTREAM_BODY_TIMEOUT', 'UPSTREAM_RESPONSE_INVALID', 'UPSTREAM_AUTH_FAILED']);

/**
 * Whether an error says the upstream failed. GatewayErrors by code; a coded transport error
 * (undici, sockets, decompression) raised while the body streamed counts; an abort, or an error
 * of the gateway's own (no code), never does.
 */
export function isUpstreamFailure(error: unknown): boolean {
  if (error instanceof GatewayError) return UPSTREAM_FAILURES.has(error.code);
  if (isAbort(error)) return false;
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string';
}

/** The breaker's verdict on a finished call: a reason when the upstream failed, undefined when it did not. */
export function upstreamFault(outcome: CallOutcome, facts: CallFacts): string | undefined {
  if (outcome.abandoned) return undefined;
  if (outcome.error !== undefined) return isUpstreamFailure(outcome.error) ? translateUpstreamError(outcome.error, 'body').code : undefined;
  const status = outcome.head?.status;
  if (status !== undefined && status >= 500) return `upstream answered ${status}`;
  const streamError = facts.meter?.streamErrorType;
  if (streamError !== undefined) return `upstream stream error: ${streamError}`;
  return undefined;
}

export function admit(breakers: Breakers, probeTimeoutMs: number): Interceptor {
  return (next) => (call, ctx) => {
    const permit = breakers.admit(call.upstream?.name ?? '', call.model, call.endpoint);
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
      if (answer.head.status >= 500) permit.fail(new Error(`upstream answered ${answer.head.status}`));
      else permit.succeed();
      return answer;
    });
  };
}
