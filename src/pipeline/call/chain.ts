import type { Readable } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import type { CallScope, FlightSource } from '../coalesce/flight.js';
import type { Upstream } from '../../upstream/upstreams.js';
import type { AffinityKey } from '../affinity/cache-affinity.js';
import type { AttemptLimit } from './attempt-limit.js';

/**
 * The upstream call as a chain of small interceptors around one typed outcome, in the style of
 * undici's `dispatcher.compose`: each interceptor is a factory `next => dispatch` in its own file
 * with one concern. A dispatch resolves with the answer's head and body (or rejects before any
 * byte); what happens to the body and how the call ended reach interceptors through the flight's
 * scope (`observe`, `finally`), which the flight runs exactly once, guarded.
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

/** `compose([a, b, c], innermost)` = a(b(c(innermost))): the first interceptor is the outermost. */
export function compose<Call extends UpstreamCall>(interceptors: readonly Interceptor<Call>[], innermost: Dispatch<Call>): Dispatch<Call> {
  let dispatch = innermost;
  for (let i = interceptors.length - 1; i >= 0; i--) dispatch = (interceptors[i] as Interceptor<Call>)(dispatch);
  return dispatch;
}
