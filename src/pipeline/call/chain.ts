import type { Readable } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import type { CallScope, FlightSource } from '../coalesce/flight.js';
import type { Upstream } from '../../upstream/upstreams.js';
import type { AttemptLimit } from './attempt-limit.js';

/**
 * The upstream call as a chain of small interceptors around one typed outcome, in the style of
 * undici's `dispatcher.compose`: each interceptor is a factory `next => dispatch` in its own file
 * with one concern. A dispatch resolves with the answer's head and body (or rejects before any
 * byte); what happens to the body and how the call ended reach interceptors through the flight's
 * scope (`observe`, `finally`), which the flight runs exactly once, guarded.
 *
 * Outer to inner (see index.ts): meter → report → share → route → admit (breaker) → trace → rewrite → retry → transport.
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
  /** Rewrites a successful JSON answer before anyone sees it (batch `results_url`), given the base URL of the upstream that answered. */
  readonly rewriteJson: ((body: Buffer, upstreamBaseUrl: string) => Buffer | undefined) | undefined;
  /** SERVER span of the leading request: parent of the upstream call's span. */
  readonly parentSpan: Span | undefined;
  /** route: the upstream this attempt goes to (undefined before the route). */
  readonly upstream: Upstream | undefined;
  /** route: upstreams still left to fail over to after this one (inner interceptors leave failures to the route when > 0). */
  readonly alternatives: number;
  /** route: the call's attempts left (FAILOVER_MAX_ATTEMPTS), shared by every attempt of the call; the transport spends them. */
  readonly attempts: AttemptLimit | undefined;
}

/** What each interceptor gets: the flight's scope, facts included (pipeline/coalesce/flight.ts). */
export type CallContext = CallScope;

export type Dispatch = (call: UpstreamCall, ctx: CallContext) => Promise<FlightSource>;
export type Interceptor = (next: Dispatch) => Dispatch;

/** `compose([a, b, c], transport)` = a(b(c(transport))): the first interceptor is the outermost. */
export function compose(interceptors: readonly Interceptor[], transport: Dispatch): Dispatch {
  let dispatch = transport;
  for (let i = interceptors.length - 1; i >= 0; i--) dispatch = (interceptors[i] as Interceptor)(dispatch);
  return dispatch;
}
