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

/**
 * Why a call may move to the next upstream after a gateway error (pipeline/call/route.ts; README,
 * Failover). The route adds the reasons an upstream's answer gives (a status, a stream's first event).
 */
export type ErrorFailoverReason = 'circuit_open' | 'connect' | 'unreachable' | 'timeout' | 'pool_timeout' | 'auth';

/** What one error code means, everywhere: the one row each reader (the edge, admit, route, retry) consults. */
export interface ErrorRule {
  /** The HTTP status the client gets. */
  readonly status: number;
  /** Anthropic's error `type`: always `errorTypeForStatus(status)` (derived, never written by hand). */
  readonly type: string;
  /**
   * Counts against the breaker of (upstream, model), a breaker every tenant shares: only what the
   * upstream did wrong (pipeline/call/admit.ts, `upstream_failed`). Nothing a client can cause.
   */
  readonly breaker: boolean;
  /** Why the route may move the call to the next upstream; undefined: it never moves (pipeline/call/route.ts). */
  readonly failover: ErrorFailoverReason | undefined;
  /** The retry interceptor may retry it on the same upstream: provably nothing reached upstream (pipeline/call/retry.ts). */
  readonly retryable: boolean;
  /** One line: when the gateway raises it. */
  readonly meaning: string;
}

interface Row {
  breaker?: boolean;
  failover?: ErrorFailoverReason;
  retryable?: boolean;
}

function rule(status: number, meaning: string, row: Row = {}): ErrorRule {
  return Object.freeze({
    status,
    type: errorTypeForStatus(status),
    breaker: row.breaker ?? false,
    failover: row.failover,
    retryable: row.retryable ?? false,
    meaning,
  });
}

/**
 * The gateway's errors, one row per code: status (and so Anthropic type), breaker, failover reason,
 * retryability, meaning. Codes are stable: logs, tests and metrics key on them, never on message
 * text. Invariants (test/unit/errors-table.test.ts): every type is its status's; the codes that count
 * against a breaker are exactly the 502/504 ones (the upstream failed: a gateway's own refusals and
 * overloads are 4xx, 500 or 529); a retryable code also fails over. README ("Endpoints", and the
 * sections each row names) says the same to clients.
 */
export const ERRORS = Object.freeze({
  INVALID_JSON: rule(400, 'the body is not valid JSON, or nests deeper than the scanner allows'),
  /** upstream/model-id.ts: refused before any upstream, breaker or label sees it. */
  INVALID_MODEL: rule(400, 'the body\'s model is not a model id'),
  INVALID_TARGET: rule(400, 'a request target the gateway never forwards (not origin-form, or with dot-segments)'),
  NOT_FORWARDABLE: rule(400, 'undici refused to send the request as given (an argument it rejects): the gateway\'s own refusal'),
  BODY_TOO_LARGE: rule(413, 'the request body exceeds MAX_BODY_BYTES'),
  BODY_READ_FAILED: rule(400, 'the request body could not be read from the client'),
  UNAUTHENTICATED: rule(401, 'a missing or unknown gateway API key'),
  /** A database key whose limits.models does not list the body's model: refused before anything counts or travels. */
  MODEL_NOT_ALLOWED: rule(403, 'a database gateway key that may not call the requested model (its limits.models)'),
  MULTIPLE_CREDENTIALS: rule(400, 'pass-through: two different upstream credentials, so which one is billed is unknown'),
  UPSTREAM_UNREACHABLE: rule(502, 'the upstream connection failed or was lost before the answer\'s head', { breaker: true, failover: 'unreachable' }),
  UPSTREAM_CONNECT_FAILED: rule(502, 'the connection was never established: the request provably did not reach upstream', { breaker: true, failover: 'connect', retryable: true }),
  UPSTREAM_HEADERS_TIMEOUT: rule(504, 'no response headers within UPSTREAM_HEADERS_TIMEOUT_MS', { breaker: true, failover: 'timeout' }),
  UPSTREAM_BODY_TIMEOUT: rule(504, 'the response body stalled past the idle timeout (after the head: no move)', { breaker: true }),
  UPSTREAM_RESPONSE_INVALID: rule(502, 'an answer the gateway cannot use or translate (cut, malformed, oversized)', { breaker: true, failover: 'unreachable' }),
  /** Raised before the request left the gateway: the upstream did nothing. */
  UPSTREAM_POOL_TIMEOUT: rule(529, 'no upstream connection (HTTP/2: stream) became free within UPSTREAM_POOL_WAIT_MS', { failover: 'pool_timeout' }),
  /** No client input reaches the credential: the gateway's credential failing is that upstream failing. */
  UPSTREAM_AUTH_FAILED: rule(502, 'credentials for a Bedrock/Vertex upstream could not be obtained or refreshed', { breaker: true, failover: 'auth' }),
  NOT_TRANSLATABLE: rule(400, 'the request cannot be translated for the chosen provider (e.g. a body that is not a JSON object)'),
  NO_UPSTREAM: rule(404, 'no configured upstream serves this request (endpoint, model or credential mode)'),
  AT_CAPACITY: rule(529, 'the gateway is at MAX_CONCURRENT_REQUESTS'),
  CIRCUIT_OPEN: rule(529, 'the breaker of (upstream, model) is open: nothing was sent', { failover: 'circuit_open' }),
  RATE_LIMITED: rule(429, 'over RATE_LIMIT_RPM for this gateway key'),
  /** 403, not 429: the official SDKs retry 408, 409, 429 and 5xx, and a spent budget does not come back within a retry. */
  BUDGET_EXCEEDED: rule(403, 'the call\'s worst-case cost does not fit a budget of the database key or its team (governance/budgets.ts)'),
  /** BUDGET_FAIL_MODE=closed while the budget counters (Redis) or the spend ledger cannot be read: transient, so retryable by the SDKs. */
  BUDGET_UNAVAILABLE: rule(503, 'budgets cannot be checked right now (BUDGET_FAIL_MODE=closed)'),
  /** A per-key limit (requests or tokens per minute, concurrent calls) of a database key: retryable, with retry-after. */
  KEY_LIMITED: rule(429, 'over a database key\'s requestsPerMinute, tokensPerMinute or maxConcurrent'),
  INTERNAL: rule(500, 'a bug: anything thrown in the pipeline that is not a GatewayError'),
} satisfies Record<string, ErrorRule>);

/** Stable codes: logs, tests and metrics key on these, never on message text. */
export type GatewayErrorCode = keyof typeof ERRORS;

/**
 * Whether `code` is one of ERRORS' codes: the guard for codes from outside the process (another
 * instance's error read back from Redis). Own keys only: `toString` or `__proto__` is no code.
 */
export function isErrorCode(code: unknown): code is GatewayErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: GatewayErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. retry-after). */
  readonly headers: Readonly<Record<string, string>>;

  /** The status (and so the type) is the code's row in ERRORS: a code means one answer. */
  constructor(code: GatewayErrorCode, message: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = options.headers ?? {};
  }

  get type(): string {
    return ERRORS[this.code].type;
  }

  toBody(requestId?: string): AnthropicErrorBody {
    return anthropicErrorBody(this.status, this.message, requestId);
  }
}

/** `err` as an Error (a thrown non-Error wrapped, its text kept): what a rejection or `lastError` carries. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
