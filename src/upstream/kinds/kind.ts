import type { Readable } from 'node:stream';
import type { UpstreamHeaders } from '../headers.js';

/**
 * Where an adapter gets the call's AbortSignal: read `signal` only when something waits on it (a
 * credential fetch). The call's stop makes the AbortSignal on first use (core/call-stop.ts).
 */
export interface CallAbort {
  readonly signal: AbortSignal;
}

/**
 * Where Claude is served: Anthropic's API, Amazon Bedrock or Google Vertex AI. A kind translates at
 * the boundary only: clients always speak the Anthropic Messages API and always see its answers
 * (status, error shape, JSON and SSE framing); everything between the route and the socket is the
 * provider's. Body edits are made in place on the raw JSON bytes, never by re-serialising a parsed
 * object, so unknown fields, thinking blocks and signatures survive byte for byte.
 */
export type UpstreamKind = 'anthropic' | 'bedrock' | 'vertex';

/** The client's request as the route hands it to one upstream. */
export interface OutgoingRequest {
  readonly method: string;
  /** Path and query as the client sent them (gateway BASE_PATH removed), e.g. `/v1/messages?beta=true`. */
  readonly path: string;
  /** Bounded endpoint label (observability/labels.ts), e.g. `messages`, `count_tokens`. */
  readonly endpoint: string;
  /**
   * The client's raw header pairs: hop-by-hop and `x-gateway-*` removed; client credentials removed when
   * the gateway holds them. Each adapter decides which of them reach its provider (its declared list).
   */
  readonly headers: readonly string[];
  /** Raw JSON bytes for JSON requests; a stream for uploads (never translated). */
  readonly body: Buffer | Readable | null;
  /** The model this upstream should run, after its model map; undefined when the request names none. */
  readonly model: string | undefined;
}

/** A provider's raw answer, as the pooled client received it (identity-decoded). */
export interface ProviderResponse {
  readonly status: number;
  readonly headers: UpstreamHeaders;
  readonly body: Readable;
  /** True when the body bytes differ from what the headers describe (framing headers must not be forwarded). */
  readonly decoded: boolean;
}

/** The request to send, and how to read its answer. */
export interface PreparedCall {
  /** Path and query to send, relative to the upstream's base URL. */
  readonly path: string;
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
  /**
   * Turns the provider's answer into the Anthropic one: same status semantics, Anthropic error
   * shape, `text/event-stream` SSE for streams. Identity (synchronous) for the `anthropic` kind.
   * An answer rewritten whole (errors, count_tokens) is a promise settled only once its body was
   * read and rewritten: it rejects with a coded GatewayError (502) when the provider's answer
   * cannot be made an Anthropic one, before any byte of a head reached a client.
   */
  translate(res: ProviderResponse): ProviderResponse | Promise<ProviderResponse>;
}

/**
 * The `translate` of a kind whose answers are Anthropic's already (the `anthropic` kind). A call
 * prepared with it is read as it comes: the transport asks the pooled client for the answer without
 * a body stream in between (upstream/direct-body.ts).
 */
export const unchangedAnswer = (res: ProviderResponse): ProviderResponse => res;

export interface UpstreamAdapter {
  readonly kind: UpstreamKind;
  /**
   * Whether this upstream can serve the request at all (endpoint and method); a reason when not.
   * The route never sends a request to an upstream that does not serve it.
   */
  refuses(req: OutgoingRequest): string | undefined;
  /**
   * Builds the provider's request: path, headers (credentials, signature) and body. May fetch or
   * refresh credentials, bounded by the call's signal and the adapter's own deadline. Rejects with a
   * GatewayError: `UPSTREAM_AUTH_FAILED` (502) when credentials cannot be had (an upstream failure:
   * the route fails over), `INVALID_REQUEST` (400) when the body cannot be translated.
   */
  prepare(req: OutgoingRequest, abort: CallAbort): Promise<PreparedCall>;
  /**
   * `prepare` for an adapter that never waits (no credential to fetch, nothing to sign): the same
   * request, returned at once, so the transport sends it with no promise between. Throws what
   * `prepare` would reject with. Absent: the transport awaits `prepare`.
   */
  prepareNow?(req: OutgoingRequest): PreparedCall;
  /** Releases credential refreshers and timers. */
  close?(): Promise<void>;
}
