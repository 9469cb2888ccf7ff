import { anthropicErrorBody } from '../../errors.js';

/**
 * Provider errors in Anthropic's terms: one table per provider, so the mappings cannot drift apart.
 * A status the client sees keeps Anthropic's meaning for it, and so does the SDK's retry decision:
 * throttling is 429 (retried after `retry-after`), overload 529, a bad request 400.
 *
 * Credentials the gateway holds and the provider rejects (expired, unknown, bad signature) are the
 * gateway's upstream failing, not the client's fault: they become 502 api_error, which the breaker
 * counts and the route fails over on, rather than a 401 that would tell the client its own key is bad.
 */

export interface MappedError {
  readonly status: number;
  /** Why, in a few words, for the message; the provider's own message follows it. */
  readonly reason: string;
  /** The gateway's credential for this upstream was rejected: refresh it before the next call. */
  readonly credentialRejected?: true;
}

const CREDENTIAL_REJECTED = (reason: string): MappedError => ({ status: 502, reason, credentialRejected: true });

/** Bedrock's error types (the `x-amzn-errortype` header, or an event stream's `:exception-type`), lower-cased. */
const BEDROCK: Readonly<Record<string, MappedError>> = {
  throttlingexception: { status: 429, reason: 'Bedrock throttled the request' },
  servicequotaexceededexception: { status: 429, reason: 'Bedrock service quota exceeded' },
  serviceunavailableexception: { status: 529, reason: 'Bedrock is unavailable' },
  modelnotreadyexception: { status: 529, reason: 'Bedrock model not ready' },
  internalserverexception: { status: 500, reason: 'Bedrock internal error' },
  modelerrorexception: { status: 500, reason: 'Bedrock model error' },
  modelstreamerrorexception: { status: 500, reason: 'Bedrock model stream error' },
  modeltimeoutexception: { status: 504, reason: 'Bedrock model timed out' },
  validationexception: { status: 400, reason: 'Bedrock rejected the request' },
  resourcenotfoundexception: { status: 404, reason: 'Bedrock resource not found' },
  accessdeniedexception: { status: 403, reason: 'Bedrock denied access' },
  expiredtokenexception: CREDENTIAL_REJECTED("Bedrock rejected the gateway's expired AWS credentials"),
  unrecognizedclientexception: CREDENTIAL_REJECTED("Bedrock did not recognise the gateway's AWS credentials"),
  invalidsignatureexception: CREDENTIAL_REJECTED("Bedrock rejected the gateway's request signature"),
  incompletesignatureexception: CREDENTIAL_REJECTED("Bedrock rejected the gateway's request signature"),
  missingauthenticationtokenexception: CREDENTIAL_REJECTED('Bedrock received no credentials from the gateway'),
};

/** `ValidationException:http://internal.amazon.com/...` and `com.amazon#ValidationException` name the same type. */
function bedrockTypeName(raw: string): string {
  let name = raw.split(':')[0] ?? raw;
  const hash = name.lastIndexOf('#');
  if (hash >= 0) name = name.slice(hash + 1);
  return name.trim().toLowerCase();
}

/** By HTTP status, for answers whose type is missing or unknown. */
function byStatus(status: number, provider: string): MappedError {
  if (status === 429) return { status: 429, reason: `${provider} rate limit` };
  if (status === 503 || status === 529) return { status: 529, reason: `${provider} is overloaded` };
  if (status === 504) return { status: 504, reason: `${provider} timed out` };
  if (status === 401) return CREDENTIAL_REJECTED(`${provider} rejected the gateway's credentials`);
  if (status >= 500) return { status: 500, reason: `${provider} error` };
  return { status, reason: `${provider} rejected the request` };
}

export function mapBedrockError(status: number, errorType: string | undefined): MappedError {
  const mapped = errorType === undefined ? undefined : BEDROCK[bedrockTypeName(errorType)];
  return mapped ?? byStatus(status, 'Bedrock');
}

/** Google's canonical status names (Vertex error bodies `{"error":{"code","message","status"}}`). */
const VERTEX: Readonly<Record<string, MappedError>> = {
  RESOURCE_EXHAUSTED: { status: 429, reason: 'Vertex AI quota exhausted' },
  UNAVAILABLE: { status: 529, reason: 'Vertex AI is unavailable' },
  INTERNAL: { status: 500, reason: 'Vertex AI internal error' },
  UNKNOWN: { status: 500, reason: 'Vertex AI error' },
  DEADLINE_EXCEEDED: { status: 504, reason: 'Vertex AI timed out' },
  INVALID_ARGUMENT: { status: 400, reason: 'Vertex AI rejected the request' },
  FAILED_PRECONDITION: { status: 400, reason: 'Vertex AI rejected the request' },
  OUT_OF_RANGE: { status: 400, reason: 'Vertex AI rejected the request' },
  NOT_FOUND: { status: 404, reason: 'Vertex AI resource not found' },
  PERMISSION_DENIED: { status: 403, reason: 'Vertex AI denied access' },
  UNAUTHENTICATED: CREDENTIAL_REJECTED("Vertex AI rejected the gateway's Google credentials"),
};

/**
 * The mapping is decided from the HTTP status alone (the answer's status must be known before its
 * body is read); Google's HTTP statuses and canonical names agree, so the name only refines the text.
 */
export function mapVertexStatus(status: number): MappedError {
  if (status === 401) return VERTEX.UNAUTHENTICATED as MappedError;
  return byStatus(status, 'Vertex AI');
}

export function vertexReason(statusName: string | undefined): string | undefined {
  return statusName === undefined ? undefined : VERTEX[statusName]?.reason;
}

/** The Anthropic error body for a mapped provider error; the provider's message is kept, secrets never were in it. */
export function mappedErrorBody(mapped: MappedError, providerMessage: string | undefined, requestId?: string): Buffer {
  const message = providerMessage === undefined || providerMessage === '' ? mapped.reason : `${mapped.reason}: ${providerMessage}`;
  return Buffer.from(JSON.stringify(anthropicErrorBody(mapped.status, message, requestId)));
}
