import type { ServerResponse } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.js';
import { recordReuse } from '../pipeline/accounting.js';
import type { CachedAnswer, ResponseCache } from '../pipeline/cache/response-cache.js';
import type { CoalesceRole } from '../pipeline/coalesce/policy.js';
import type { CallOutcome, Flight } from '../pipeline/coalesce/flight.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import { isWholeAnswer } from '../pipeline/reuse.js';
import type { SharedResponseCache } from '../coordination/shared-cache.js';
import type { CallGovernance } from '../governance/govern.js';
import type { RequestContext } from './context.js';
import type { AnswerSource, Exchange } from './exchange.js';
import { noteRequestId } from './request-id.js';
import { roleHeaders } from './governance.js';

/**
 * The answer sources that serve a finished upstream answer to a request that was not on its call:
 * the response cache (CACHE=on; this instance, then Redis) and the lingering answers
 * (COALESCE_LINGER_MS). What either may hold is decided in one place: keepAnswer, through
 * pipeline/reuse.ts's isWholeAnswer.
 */

/** The response cache: asked for every request that may be cached, hit or miss counted. */
export function cacheSource(flights: FlightGroup, metrics: GatewayMetrics, cache: ResponseCache, sharedCache: SharedResponseCache | undefined, governance?: CallGovernance): AnswerSource {
  const serve = async (exchange: Exchange, hit: CachedAnswer): Promise<boolean> => {
    const { res, ctx, model } = exchange;
    await serveFinished(res, ctx, flights, hit, 'cache', exchange);
    recordReuse(metrics, ctx.mode, model, hit, 'cache');
    if (exchange.governed !== undefined) governance?.reused(exchange.governed, hit, 'cache', hit.head.status, ctx.upstreamRequestId);
    return true;
  };
  return (exchange) => {
    const { request, key, ctx } = exchange;
    if (!request.caching) return false;
    const local = cache.get(key);
    if (local !== undefined || sharedCache === undefined) {
      metrics[local === undefined ? 'cacheMisses' : 'cacheHits'].inc({ endpoint: request.endpoint, mode: metrics.modes.known(ctx.mode) });
      return local === undefined ? false : serve(exchange, local);
    }
    return sharedCache.get(key).then((hit) => {
      metrics[hit === undefined ? 'cacheMisses' : 'cacheHits'].inc({ endpoint: request.endpoint, mode: metrics.modes.known(ctx.mode) });
      return hit === undefined ? false : serve(exchange, hit);
    });
  };
}

/** A finished whole answer of an identical call that ended moments ago: served as a coalesced follower. */
export function lingeringSource(flights: FlightGroup, metrics: GatewayMetrics, linger: ResponseCache, governance?: CallGovernance): AnswerSource {
  return (exchange) => {
    const { request, key, res, ctx, model } = exchange;
    if (!request.coalescing) return false;
    const recent = linger.get(key);
    if (recent === undefined) return false;
    return serveFinished(res, ctx, flights, recent, 'follower', exchange).then(() => {
      metrics.coalesced.inc({ endpoint: request.endpoint, mode: metrics.modes.known(ctx.mode) });
      recordReuse(metrics, ctx.mode, model, recent, 'coalesced');
      if (exchange.governed !== undefined) governance?.reused(exchange.governed, recent, 'lingering', recent.head.status, ctx.upstreamRequestId);
      return true;
    });
  };
}

/** Offers a whole answer (pipeline/reuse.ts: the one verdict) for reuse (cache, lingering), if the flight kept all of it. */
export function keepAnswer(flight: Flight, outcome: CallOutcome, keep: (answer: CachedAnswer) => void): void {
  const answer = answerToKeep(flight, outcome);
  if (answer !== undefined) keep(answer);
}

/** keepAnswer's answer: what a finished flight offers for reuse, or undefined (no callback per answer). */
export function answerToKeep(flight: Flight, outcome: CallOutcome): CachedAnswer | undefined {
  if (!isWholeAnswer(outcome, flight.facts)) return undefined;
  const body = flight.finishedBody();
  const head = flight.answerHead;
  if (body === undefined || head === undefined) return undefined;
  const meter = flight.facts.meter;
  meter?.finish();
  // The kept chunks are every byte of the body (finishedBody: whole, never trimmed): their total is the flight's.
  return { head, body, bytes: flight.bytesSoFar, usage: meter?.hasUsage === true ? { ...meter.usage } : undefined, model: meter?.model };
}

/** Answers from a finished upstream answer (cache hit or lingering result) through the same pump as live flights. */
async function serveFinished(res: ServerResponse, ctx: RequestContext, flights: FlightGroup, answer: CachedAnswer, role: CoalesceRole, exchange: Exchange): Promise<void> {
  ctx.role = role;
  const flight = flights.solo();
  const outcome = flight.subscribe(res, () => roleHeaders(role, exchange));
  await flight.run(() => Promise.resolve({ head: answer.head, body: answer.body }));
  await outcome;
  noteRequestId(answer.head, ctx);
}
