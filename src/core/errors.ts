/**
 * One error model for everything the gateway itself raises. Transport failures are translated
 * into a GatewayError once, at the upstream boundary (src/upstream/client.ts); the HTTP edge turns
 * any GatewayError into an Anthropic-shaped body. Upstream error responses are never wrapped: they
 * pass through byte for byte.
 */

/** Anthropic's error `type` for each status, as the API and the official SDK use them. One table, so mappings cannot drift. */
export const ERROR_TYPE_BY_STATUS: Readonly<Record<number, string>> = Object.freeze({
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'timeout_error',
  413: 'request_too_large',
  431: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
});

export function errorTypeForStatus(status: number): string {
  return ERROR_TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id?: string;
}

export function anthropicErrorBody(status: number, message: string, requestId?: string): AnthropicErrorBody {
  const body: AnthropicErrorBody = { type: 'error', error: { type: errorTypeForStatus(status), message } };
  if (requestId !== undefined) body.request_id = requestId;
  return body;
}

/** Stable codes: logs, tests and metrics key on these, never on message text. */
export type GatewayErrorCode =
  | 'INVALID_JSON'
  /** The body's model is not a model id (upstream/model-id.ts): refused before any upstream, breaker or label sees it. */
  | 'INVALID_MODEL'
  /** A request target the gateway never forwards (not origin-form, or with dot-segments). */
  | 'INVALID_TARGET'
  /** undici refused to send the request as given (an argument it rejects): the gateway's own refusal, never an upstream failure. */
  | 'NOT_FORWARDABLE'
  | 'BODY_TOO_LARGE'
  | 'BODY_READ_FAILED'
  | 'UNAUTHENTICATED'
  /** Pass-through: the request carries two different upstream credentials, so which one is billed (and rate limited) is unknown. */
  | 'MULTIPLE_CREDENTIALS'
  | 'UPSTREAM_UNREACHABLE'
  /** The connection was never established: the request provably did not reach upstream. */
  | 'UPSTREAM_CONNECT_FAILED'
  | 'UPSTREAM_HEADERS_TIMEOUT'
  | 'UPSTREAM_BODY_TIMEOUT'
  | 'UPSTREAM_RESPONSE_INVALID'
  /** No upstream connection (HTTP/2: stream) became free within UPSTREAM_POOL_WAIT_MS: raised before the request left the gateway. */
  | 'UPSTREAM_POOL_TIMEOUT'
  /** Credentials for a Bedrock/Vertex upstream could not be obtained or refreshed: that upstream failed (the route fails over). */
  | 'UPSTREAM_AUTH_FAILED'
  /** The request cannot be translated for the chosen provider (e.g. a body that is not a JSON object). */
  | 'NOT_TRANSLATABLE'
  /** No configured upstream serves this request (endpoint, model or credential mode). */
  | 'NO_UPSTREAM'
  | 'AT_CAPACITY'
  | 'CIRCUIT_OPEN'
  | 'RATE_LIMITED'
  | 'INTERNAL';

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: GatewayErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. retry-after). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: GatewayErrorCode,
    status: number,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.headers = options.headers ?? {};
  }

  get type(): string {
    return errorTypeForStatus(this.status);
  }

  toBody(requestId?: string): AnthropicErrorBody {
    return anthropicErrorBody(this.status, this.message, requestId);
  }
}
