import { randomUUID } from 'node:crypto';
import { anthropicErrorBody } from '../../core/errors.js';

/**
 * Provider errors in Anthropic's terms: one table per provider, so the mappings cannot drift apart.
 * A status the client sees keeps Anthropic's meaning for it, and so does the SDK's retry decision:
 * throttling is 429 (retried after `retry-after`), overload 529, a bad request 400.
 *
 * Credentials the gateway holds and the provider rejects (expired, unknown, bad signature) are the
 * gateway's upstream failing, not the client's fault: they become 502 api_error, which the breaker
 * counts and the route fails over on, rather than a 401 that would tell the client its own key is bad.
 * No client input can cause one: the adapters forward only their declared header lists (nothing in the
 * providers' credential namespaces) and the model id is checked before it enters the signed path.
 *
 * What clients read: the gateway's own words (`reason`), never the provider's, except for the few
 * classes marked `clientMessage` (their text is about the client's own request body), and even
 * then only when the text passes `namesDeployment`. Provider texts of every other class can name
 * the deployment (role ARNs, account ids, projects, service accounts, emails): they go to the
 * operator's log (a ProviderErrorReport at `warn`), tied to the client's answer by its request id.
 */

export interface MappedError {
  readonly status: number;
  /** Why, in a few words, for the message; the provider's own message follows it. */
  readonly reason: string;
  /** The gateway's credential for this upstream was rejected: refresh it before the next call. */
  readonly credentialRejected?: true;
  /** The provider's message is about the client's request body and may reach the client (after `namesDeployment`). */
  readonly clientMessage?: true;
}

/** A provider error whose text was kept from the client: for the operator's log, never for a client. */
export interface ProviderErrorReport {
  readonly kind: 'bedrock' | 'vertex';
  /** The provider's HTTP status; undefined for an error inside a stream. */
  readonly providerStatus: number | undefined;
  /** The provider's error class as it named it (Bedrock error type, Google status name), bounded. */
  readonly providerType: string | undefined;
  /** The status the client was given. */
  readonly status: number;
  /** The request id the client was given (`request-id` header and `request_id`), when it has one. */
  readonly upstreamRequestId: string | undefined;
  /** The provider's own text (bounded: MAX_LOGGED_MESSAGE characters); undefined when its body had none. */
  readonly providerMessage: string | undefined;
}

/** Where an adapter reports provider errors (the process logs them at `warn`); called off the hot path only. */
export type ProviderErrorSink = (report: ProviderErrorReport) => void;

export const ignoreProviderErrors: ProviderErrorSink = () => undefined;

/** Characters of a provider's text kept in a report (the whole body may be 1 MiB). */
export const MAX_LOGGED_MESSAGE = 2048;
/** Characters of a kept (`clientMessage`) provider message given to a client. */
const MAX_CLIENT_MESSAGE = 2048;

/**
 * Text that may identify the deployment: ARNs, 12-digit AWS account ids, access key ids, Google
 * resource paths (`projects/...`), service accounts and anything shaped like an email address.
 * A `clientMessage` text that matches is replaced like any other (the model map may hold an
 * inference-profile ARN, which Bedrock's validation messages echo).
 */
const DEPLOYMENT_TEXT = /arn:|(?<![0-9])[0-9]{12}(?![0-9])|\b(?:AKIA|ASIA)[A-Z0-9]{12,}|projects\/|serviceaccount|[^\s@'"`]+@[^\s@'"`]+\.[a-z]{2,}/i;

export function namesDeployment(text: string): boolean {
  return DEPLOYMENT_TEXT.test(text);
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
  validationexception: { status: 400, reason: 'Bedrock rejected the request', clientMessage: true },
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
  INVALID_ARGUMENT: { status: 400, reason: 'Vertex AI rejected the request', clientMessage: true },
  /** Anthropic's own error body, relayed by Vertex for a request body the model API refused. */
  invalid_request_error: { status: 400, reason: 'Vertex AI rejected the request', clientMessage: true },
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

/** The Vertex class named by an error body (Google's status name, or Anthropic's error type), refining the status mapping. */
export function refineVertex(mapped: MappedError, className: string | undefined): MappedError {
  const named = className === undefined ? undefined : VERTEX[className];
  if (named === undefined || named.status !== mapped.status) return mapped;
  return named;
}

/** The client's request id: the provider's, or the gateway's own when the provider gave none (the log line needs one to be found). */
export function answerRequestId(providerRequestId: string | undefined): string {
  return providerRequestId ?? `req_gateway_${randomUUID().replace(/-/g, '')}`;
}

/** The provider's text a client may read for this class, or undefined when it is withheld. */
export function clientText(mapped: MappedError, providerMessage: string | undefined): string | undefined {
  if (mapped.clientMessage !== true || providerMessage === undefined || providerMessage === '') return undefined;
  if (providerMessage.length > MAX_CLIENT_MESSAGE || namesDeployment(providerMessage)) return undefined;
  return providerMessage;
}

/** The Anthropic error body for a mapped provider error: the gateway's reason, and the provider's message only when `clientText` allows it. */
export function mappedErrorBody(mapped: MappedError, kept: string | undefined, requestId: string | undefined): Buffer {
  const message = kept === undefined ? mapped.reason : `${mapped.reason}: ${kept}`;
  return Buffer.from(JSON.stringify(anthropicErrorBody(mapped.status, message, requestId)));
}

/** At most `max` characters of a provider's text (a type name, a message) for a report. */
export function bounded(text: string | undefined, max = MAX_LOGGED_MESSAGE): string | undefined {
  return text === undefined || text.length <= max ? text : `${text.slice(0, max)}…`;
}
