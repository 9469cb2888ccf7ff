import { ERRORS, GatewayError, type ErrorFailoverReason } from '../../core/errors.js';

/**
 * The failover policy, pure: what the route does after one attempt, from what the attempt ended
 * with, where a move would go and what the call has left. No I/O, no clock, no budget withdrawal:
 * the route (route.ts) runs the attempts, spends the retry budget when told to, and keeps the
 * metrics. The rules (README, Resilience):
 * - a move needs a replayable body, an upstream left to move to and an attempt left after this one
 *   (`mayMove`); an open breaker is the exception: nothing was sent, so moving past it is free and
 *   needs none of this;
 * - only failures before any byte reached a client move the call: a gateway error whose code has a
 *   `failover` reason (ERRORS), a 5xx or 529, a 429, 401 or 403 on a gateway-held credential, a
 *   stream whose first event is `error`;
 * - a move to another key on the SAME host after a failure the host may be suffering from (host
 *   strain: 5xx, 529, a broken connection, a timeout, a stream error) adds load to it: that move must
 *   be paid from the retry budget. A 429, 401 or 403 is about one key, and a failure that sent nothing
 *   (refused connection, no credentials, no free connection) added no load: moving on from those is free.
 */

/** A gateway error's reason (its code's `failover` column in ERRORS), or one an upstream's answer gives. */
export type FailoverReason = ErrorFailoverReason | 'status_5xx' | 'overloaded' | 'rate_limited' | 'stream_error';

/** Failures that say the host itself may be struggling: another attempt on that host adds to its load. */
const HOST_STRAIN: ReadonlySet<FailoverReason> = new Set<FailoverReason>(['unreachable', 'timeout', 'status_5xx', 'overloaded', 'stream_error']);

/** What the policy needs of an upstream. */
export interface FailoverTarget {
  readonly host: string;
  /** The gateway holds the credential (a 429, 401 or 403 is about that credential, not the client's). */
  readonly holdsCredentials: boolean;
}

/**
 * What to do after an attempt: `stop` (this attempt's answer, or error, is the call's), or `move` to
 * the next candidate for `reason`; a `paid` move happens only if the retry budget pays for it (else stop).
 */
export type FailoverMove = { readonly kind: 'stop' } | { readonly kind: 'move'; readonly reason: FailoverReason; readonly paid: boolean };

const STOP: FailoverMove = { kind: 'stop' };

/** Why a failed attempt may move on, or undefined when it must not (the client's abort, the gateway's own refusal). */
export function errorReason(err: unknown): FailoverReason | undefined {
  return err instanceof GatewayError ? ERRORS[err.code].failover : undefined;
}

/** Why an answer with this status should not be the call's answer when another upstream can still serve it. */
export function answerReason(status: number, upstream: FailoverTarget): FailoverReason | undefined {
  if (status < 400) return undefined;
  if (status === 529) return 'overloaded';
  if (status >= 500) return 'status_5xx';
  // A 429, 401 or 403 in pass-through mode is about the client's own key: another upstream would say the same.
  if (upstream.holdsCredentials && status === 429) return 'rate_limited';
  // 403 on a held credential: what that credential may use (a Bedrock account without access to the
  // model, a Vertex service account without the permission, a key confined to a workspace), which
  // another upstream's credential may have. Not a breaker failure: the client picks the model.
  if (upstream.holdsCredentials && (status === 401 || status === 403)) return 'auth';
  return undefined;
}

/**
 * Whether an attempt may still be followed by a real move (decided before it is sent: inner
 * interceptors leave failures to the route then). `attemptsLeft` still counts this attempt: a
 * move needs one more after it.
 */
export function mayMove(replayable: boolean, hasNextCandidate: boolean, attemptsLeft: number): boolean {
  return replayable && hasNextCandidate && attemptsLeft > 1;
}

/**
 * The next move after an attempt that ended for `reason` (undefined: it did not fail in a way that
 * moves), from `from` to `to` (the next candidate, if any); `movable` is `mayMove` for this attempt.
 */
export function nextMove(reason: FailoverReason | undefined, from: FailoverTarget, to: FailoverTarget | undefined, movable: boolean): FailoverMove {
  // An open breaker sent nothing: past it is free, even with nothing left to move to (the call then ends).
  if (reason === 'circuit_open') return { kind: 'move', reason, paid: false };
  if (reason === undefined || !movable || to === undefined) return STOP;
  return { kind: 'move', reason, paid: HOST_STRAIN.has(reason) && from.host === to.host };
}
