import type { Readable } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import type { CallScope, FlightSource } from '../coalesce/flight.js';
import type { Upstream } from '../../upstream/upstreams.js';
import type { AffinityKey } from '../affinity/cache-affinity.js';
import type { AttemptLimit } from './attempt-limit.js';
import { asError } from '../../core/errors.js';

/**
 * The upstream call as a chain of small interceptors around one typed outcome, in the style of
 * undici's `dispatcher.compose`: each interceptor is a factory `next => dispatch` in its own file
 * with one concern. A dispatch resolves with the answer's head and body (or rejects before any
 * byte); what happens to the body and how the call ended reach interceptors through the flight's
 * scope (`observe`, `finally`), which the flight runs exactly once, guarded.
 *
 * An interceptor that only observes (meter, report, trace; share without a shared store) is an
 * `Observer`: it registers its hooks on the scope (`onHead`, `observe`, `finally`) and passes the
 * call inward synchronously. `compose` runs each run of neighbouring observers as one synchronous
 * step in front of the dispatch inside them, so observers add no async frame and no promise: the
 * awaited chain is only what may wait (share with a store, route, admit's probe, retry, transport).
 *
 * Outer to inner (see index.ts): meter → report → share → route → admit (breaker) → trace → rewrite → retry → transport.
 * The types carry that order: interceptors outside the route get an `UpstreamCall` (what the edge
 * decided), interceptors inside it a `RoutedCall` (the route's decisions required), and the route is
 * the one interceptor that turns the one into the other. Putting an inner interceptor outside the
 * route, or an outer one inside it, does not compile.
 */

/** One upstream call, as the edge classified it. Immutable: an interceptor passes a changed copy inward. */
export interface UpstreamCall {
  readonly method: string;
  /** Path and query as the client sent them (the gateway's BASE_PATH removed). */
  readonly path: string;
  /** Raw header pairs to send upstream (already filtered for hop-by-hop and gateway headers). */
  readonly headers: readonly string[];
  readonly body: Buffer | Readable | null;
  /** Bounded endpoint label. */
  readonly endpoint: string;
  /** Mode name of the request that leads the call (validated, not a label: accounting resolves it through ModeLabels). */
  readonly mode: string;
  /** The model the request names (raw, unbounded: never a label as is); undefined when none. */
  readonly model: string | undefined;
  /** The coalescing fingerprint when other instances may share this call. */
  readonly sharedKey: string | undefined;
  /** The cached prompt head's identity, for cache-affinity routing (pipeline/affinity/); undefined when it has none or affinity is off. */
  readonly affinity: AffinityKey | undefined;
  /** Rewrites a successful JSON answer before anyone sees it (batch `results_url`), given the base URL of the upstream that answered. */
  readonly rewriteJson: ((body: Buffer, upstreamBaseUrl: string) => Buffer | undefined) | undefined;
  /** SERVER span of the leading request: parent of the upstream call's span. */
  readonly parentSpan: Span | undefined;
}

/** What the route decides for one attempt of a call. */
export interface RouteDecision {
  /** The upstream this attempt goes to. */
  readonly upstream: Upstream;
  /** Upstreams still left to fail over to after this one (inner interceptors leave failures to the route when > 0). */
  readonly alternatives: number;
  /** The call's attempts left (FAILOVER_MAX_ATTEMPTS), shared by every attempt of the call; the transport spends them. */
  readonly attempts: AttemptLimit;
}

/** One attempt of a call, as the route hands it inward: the call with the route's decisions. */
export interface RoutedCall extends UpstreamCall, RouteDecision {}

/** What each interceptor gets: the flight's scope, facts included (pipeline/coalesce/flight.ts). */
export type CallContext = CallScope;

/** Sends a call (an `UpstreamCall` outside the route, a `RoutedCall` inside it) and resolves with its answer. */
export type Dispatch<Call extends UpstreamCall = UpstreamCall> = (call: Call, ctx: CallContext) => Promise<FlightSource>;
/** An interceptor that keeps the call's stage: `next => dispatch`. */
export type Interceptor<Call extends UpstreamCall> = (next: Dispatch<Call>) => Dispatch<Call>;
/** Outside the route (meter, report, share): the call as the edge classified it. */
export type OuterInterceptor = Interceptor<UpstreamCall>;
/** Inside the route (admit, trace, rewrite, retry): one attempt, its upstream and attempts decided. */
export type InnerInterceptor = Interceptor<RoutedCall>;
/** The route: takes the edge's call, hands each attempt inward routed. */
export type RouteInterceptor = (next: Dispatch<RoutedCall>) => Dispatch;

/**
 * What an observer does per call: registers its hooks on the call's scope and returns the call to
 * pass inward (the same one, or a changed copy). Synchronous, and it never sees the answer resolve:
 * what it wants of the answer it asks the scope for (`onHead`, `observe`, `finally`).
 */
export type Observe<Call extends UpstreamCall> = (call: Call, ctx: CallContext) => Call;

/**
 * An observer as a stage of the chain. It is an interceptor too (usable alone: `observer(see)(next)`),
 * so it goes into the same ordered lists and keeps the compile-time outer/inner split; `compose`
 * recognises it by `see` and fuses it with its neighbouring observers.
 */
export interface Observer<Call extends UpstreamCall> extends Interceptor<Call> {
  readonly see: Observe<Call>;
}
/** An observer outside the route (meter, report, share without a store). */
export type OuterObserver = Observer<UpstreamCall>;
/** An observer inside the route (trace). */
export type InnerObserver = Observer<RoutedCall>;

export function observer<Call extends UpstreamCall>(see: Observe<Call>): Observer<Call> {
  const alone: Interceptor<Call> = (next) => observed([see], next);
  return Object.assign(alone, { see });
}

function seeOf<Call extends UpstreamCall>(interceptor: Interceptor<Call>): Observe<Call> | undefined {
  return (interceptor as Partial<Observer<Call>>).see;
}

/**
 * One synchronous step for a run of observers (in order, outer first), then the dispatch inside
 * them: no frame of its own in the awaited chain, and the promise it returns is `next`'s own.
 * An observer that throws fails the call like a rejected dispatch (a dispatch never throws).
 */
function observed<Call extends UpstreamCall>(sees: readonly Observe<Call>[], next: Dispatch<Call>): Dispatch<Call> {
  return (call, ctx) => {
    let seen = call;
    try {
      for (let i = 0; i < sees.length; i++) seen = (sees[i] as Observe<Call>)(seen, ctx);
    } catch (err) {
      return Promise.reject(asError(err));
    }
    return next(seen, ctx);
  };
}

/**
 * `compose([a, b, c], innermost)` = a(b(c(innermost))): the first interceptor is the outermost.
 * Neighbouring observers become one synchronous step (`observed`) instead of one frame each.
 */
export function compose<Call extends UpstreamCall>(interceptors: readonly Interceptor<Call>[], innermost: Dispatch<Call>): Dispatch<Call> {
  let dispatch = innermost;
  let i = interceptors.length - 1;
  while (i >= 0) {
    const interceptor = interceptors[i] as Interceptor<Call>;
    if (seeOf(interceptor) === undefined) {
      dispatch = interceptor(dispatch);
      i--;
      continue;
    }
    // The run of observers ending at i: one step, outer first.
    let first = i;
    while (first > 0 && seeOf(interceptors[first - 1] as Interceptor<Call>) !== undefined) first--;
    dispatch = observed(interceptors.slice(first, i + 1).map((o) => seeOf(o) as Observe<Call>), dispatch);
    i = first - 1;
  }
  return dispatch;
}
