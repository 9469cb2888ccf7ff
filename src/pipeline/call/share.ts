import type { GatewayMetrics } from '../../observability/metrics.js';
import type { SharedFlights } from '../coalesce/shared-flights.js';
import type { Interceptor } from './chain.js';

/**
 * Cross-instance coalescing through the SharedFlights port (Redis when configured). Local
 * flights coalesce first, so each instance brings at most one call per fingerprint here.
 * - follower: another instance calls upstream; its answer is relayed and nothing inner runs.
 * - leader: the call goes on inward and what it answers is published, in order, ending with
 *   exactly one end or fail; while followers elsewhere still read, the call is held open even if
 *   this instance's own clients left.
 * - local: no coordination possible right now; the call goes on inward unshared.
 */
export function share(shared: SharedFlights | undefined, metrics: GatewayMetrics): Interceptor {
  return (next) => async (call, ctx) => {
    ctx.facts.origin = 'upstream';
    if (shared === undefined || call.sharedKey === undefined) return next(call, ctx);
    const joined = await shared.join(call.sharedKey, ctx.signal);
    if (joined.role === 'local') return next(call, ctx);
    if (joined.role === 'follower') {
      ctx.facts.origin = 'remote';
      metrics.remoteCoalesced.inc({ role: 'follower' });
      return joined.answer;
    }
    const publisher = joined.publisher;
    metrics.remoteCoalesced.inc({ role: publisher.takeover ? 'takeover' : 'leader' });
    let release: (() => void) | undefined;
    ctx.finally((outcome) => {
      release?.();
      release = undefined;
      if (outcome.complete && outcome.error === undefined) publisher.end();
      else publisher.fail(outcome.error ?? new Error('abandoned'));
    });
    publisher.watchListeners((listening) => {
      if (listening) release ??= ctx.hold();
      else {
        release?.();
        release = undefined;
      }
    });
    const answer = await next(call, ctx);
    publisher.head(answer.head);
    ctx.observe((chunk) => publisher.chunk(chunk));
    return answer;
  };
}
