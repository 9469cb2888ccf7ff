import type { SharedFlights, SharedPublisher } from '../coalesce/shared-flights.js';
import { isWholeAnswer } from '../reuse.js';
import type { FlightSource } from '../coalesce/flight.js';
import { observer, type CallContext, type Dispatch, type OuterInterceptor, type UpstreamCall } from './chain.js';

/**
 * Cross-instance coalescing through the SharedFlights port (Redis when configured). Local
 * flights coalesce first, so each instance brings at most one call per fingerprint here.
 * - follower: another instance calls upstream; its answer is relayed and nothing inner runs.
 * - leader: the call goes on inward and what it answers is published, in order, ending with
 *   exactly one end (marked whole or not: pipeline/reuse.ts) or fail; while followers elsewhere still read, the call is held open even if
 *   this instance's own clients left (see keepRunningWhileListened).
 * - local: no coordination possible right now; the call goes on inward unshared.
 * The port counts `remote_flights_total` itself.
 */
export function share(shared: SharedFlights | undefined): OuterInterceptor {
  if (shared === undefined) {
    // Nothing to coordinate: an observer that only states where the answer comes from.
    return observer((call, ctx) => {
      ctx.facts.origin = 'upstream';
      return call;
    });
  }
  return (next) => (call, ctx) => {
    ctx.facts.origin = 'upstream';
    // A call no other instance may share passes straight through (no promise of its own).
    const key = call.sharedKey;
    return key === undefined ? next(call, ctx) : coordinated(shared, key, next, call, ctx);
  };
}

/** A call other instances may share: follower, leader or local, as the port decides (see share). */
async function coordinated(shared: SharedFlights, key: string, next: Dispatch, call: UpstreamCall, ctx: CallContext): Promise<FlightSource> {
  const joined = await shared.join(key, ctx.signal);
  if (joined.role === 'local') return next(call, ctx);
  if (joined.role === 'follower') {
    ctx.facts.origin = 'remote';
    // The relay is as whole as the leading instance found its answer (its end entry says).
    ctx.finally(() => {
      ctx.facts.framed = joined.whole();
    });
    return joined.answer;
  }
  const publisher = joined.publisher;
  const release = keepRunningWhileListened(ctx, publisher);
  // Runs after the meter's own hook (registered outside, so later): the verdict reads a finished meter.
  ctx.finally((outcome) => {
    if (outcome.complete && outcome.error === undefined) publisher.end(isWholeAnswer(outcome, ctx.facts));
    else publisher.fail(outcome.error ?? new Error('abandoned'));
    release();
  });
  const answer = await next(call, ctx);
  publisher.head(answer.head);
  ctx.observe((chunk) => publisher.chunk(chunk));
  return answer;
}

/**
 * The leader keeps the call running while followers on other instances listen, exactly as it does
 * for its own clients: the flight is held, and when its last local client leaves (or the remote
 * listeners drop to none) the publisher is asked, atomically with releasing the claim, whether
 * anyone still listens; only a "no" releases the hold (and so stops the call). Returns the release.
 */
function keepRunningWhileListened(ctx: CallContext, publisher: SharedPublisher): () => void {
  const release = ctx.hold();
  let deciding = false;
  const decide = async (): Promise<void> => {
    if (deciding || ctx.localListeners() > 0) return;
    deciding = true;
    // A Redis failure answers "nobody": the call must not run on for listeners nobody can confirm.
    const listened = await publisher.stillListened().catch(() => false);
    deciding = false;
    if (!listened && ctx.localListeners() === 0) release();
  };
  ctx.onIdle(() => void decide());
  publisher.watchListeners((listening) => {
    if (!listening) void decide();
  });
  return release;
}
