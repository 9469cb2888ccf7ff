import type { Readable } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import type { CallScope, FlightSource } from '../coalesce/flight.js';
import type { UsageMeter } from '../../upstream/usage.js';
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

/**
 * What the call learned on its way, written by the interceptor that knows it and read after the
 * outcome (accounting, tracing, the edge). Each field has exactly one writer, named here.
 */
export interface CallFacts {
  /** route: name of the upstream whose answer this is (the last attempt's). */
  upstream: string | undefined;
  /** share: whether this instance made the upstream call or relayed another instance's. */
  origin: 'upstream' | 'remote' | undefined;
  /**
   * Whether the answer's body, once it ended, ended where its framing says it must rather than where
   * a connection happened to close. transport: the HTTP framing of the call's own answer
   * (upstream/client.ts `delimited`). share: for an answer relayed from another instance, that
   * instance's verdict (pipeline/reuse.ts) as its end entry carried it, written when the relay ended.
   * The two writers never meet: a relayed call runs no transport.
   */
  framed: boolean | undefined;
  /** transport: performance.now() when the (last) upstream request was sent. */
  sentAt: number | undefined;
  /** transport: performance.now() when the upstream response headers arrived. */
  headersAt: number | undefined;
  /** meter: usage, model and stream error of the answer's body. */
  meter: UsageMeter | undefined;
  /** trace: the upstream CLIENT span. */
  span: Span | undefined;
}

export function newFacts(): CallFacts {
  return { upstream: undefined, origin: undefined, framed: undefined, sentAt: undefined, headersAt: undefined, meter: undefined, span: undefined };
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
