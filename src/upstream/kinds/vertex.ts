import { GoogleAuth } from 'google-auth-library';
import { GatewayError } from '../../core/errors.js';
import { ACCEPT_IDENTITY, headerValue } from '../headers.js';
import { notTranslatable } from './anthropic.js';
import { withDeadline } from './deadline.js';
import { onlyHeaders } from '../header-list.js';
import { isModelId, MODEL_ID_REFUSAL } from '../model-id.js';
import { TopLevelObject } from './json-edit.js';
import type { CallAbort, OutgoingRequest, PreparedCall, ProviderResponse, UpstreamAdapter } from './kind.js';
import { answerRequestId, bounded, clientText, ignoreProviderErrors, mappedErrorBody, mapVertexStatus, MAX_LOGGED_MESSAGE, refineVertex, type ProviderErrorSink } from './provider-errors.js';
import { rewrittenAnswer, rewrittenHeaders } from './responses.js';

/**
 * Google Vertex AI's publisher-model API speaking for Anthropic's Messages API.
 *
 * Requests: POST /v1/messages -> .../publishers/anthropic/models/{model}:rawPredict, or
 * :streamRawPredict when the body says `"stream": true` (the flag stays in the body, as Vertex
 * expects); POST /v1/messages/count_tokens -> .../publishers/anthropic/models/count-tokens:rawPredict
 * with the model kept in the body. The body gains `anthropic_version: "vertex-2023-10-16"` and
 * loses `model` (count_tokens aside); `anthropic-version` and `anthropic-beta` travel as headers,
 * which Vertex accepts. Credentials: Google Application Default Credentials (google-auth-library:
 * GOOGLE_APPLICATION_CREDENTIALS with service_account, authorized_user or external_account, or the
 * metadata server), scope cloud-platform; the library caches and refreshes the token.
 *
 * Answers: JSON and SSE are Anthropic's already and pass through untouched; errors (Google's
 * `{"error":{"code","message","status"}}` or an Anthropic-shaped body) take Anthropic's shape and
 * status, in the gateway's words (provider-errors.ts); the provider's text goes to the log.
 */

export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export interface VertexAdapterOptions {
  /** Base URL, e.g. https://us-east5-aiplatform.googleapis.com (https://aiplatform.googleapis.com for region `global`). */
  url: string;
  project: string;
  region: string;
  /** A credentials file instead of ADC's own search (GOOGLE_APPLICATION_CREDENTIALS). */
  keyFilename?: string | undefined;
  /** Longest a token fetch may take before the call fails with UPSTREAM_AUTH_FAILED. Default 5 s. */
  credentialTimeoutMs?: number | undefined;
  /** Where provider error texts kept from clients are reported (the log). */
  onProviderError?: ProviderErrorSink | undefined;
}

/**
 * Client headers that reach Vertex AI: the Anthropic headers its rawPredict/streamRawPredict documents
 * for Claude. `content-type`, `accept` and `authorization` are the adapter's own; nothing in Google's
 * control namespaces (`x-goog-*` such as `x-goog-user-project`, `x-server-timeout`,
 * `x-http-method-override`, ...) and no client credential ever travels. The request carries exactly:
 * this list's headers, the gateway's `accept-encoding`, `content-type`, `accept` and the ADC token.
 */
export const VERTEX_CLIENT_HEADERS: ReadonlySet<string> = new Set(['anthropic-version', 'anthropic-beta']);

/** Model ids such as `claude-sonnet-4-5@20250929` keep their `@`; anything else unsafe in a path segment is escaped. */
function modelSegment(model: string): string {
  return encodeURIComponent(model).replace(/%40/g, '@');
}

interface GoogleErrorFields {
  /** `error.message` of a JSON body (the only text a client may read); */
  message: string | undefined;
  /** ...or the body's text when it has none, for the log only. */
  text: string | undefined;
  /** Google's status name, or Anthropic's error type for an Anthropic-shaped body. */
  className: string | undefined;
}

/** The message and class of a Vertex error body: Google's (possibly in a one-element array) or Anthropic's own shape. */
function errorFields(whole: Buffer): GoogleErrorFields {
  const text = whole.length > 0 ? whole.toString('utf8', 0, Math.min(whole.length, MAX_LOGGED_MESSAGE)) : undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(whole.toString('utf8'));
  } catch {
    return { message: undefined, text, className: undefined };
  }
  if (Array.isArray(parsed)) parsed = parsed[0];
  if (typeof parsed !== 'object' || parsed === null) return { message: undefined, text, className: undefined };
  const error = (parsed as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return { message: undefined, text, className: undefined };
  const { message, status, type } = error as { message?: unknown; status?: unknown; type?: unknown };
  const className = typeof status === 'string' ? status : typeof type === 'string' ? type : undefined;
  return typeof message === 'string' ? { message, text: message, className } : { message: undefined, text, className };
}

export class VertexAdapter implements UpstreamAdapter {
  readonly kind = 'vertex' as const;
  private readonly base: string;
  private readonly keyFilename: string | undefined;
  private readonly credentialTimeoutMs: number;
  private readonly report: ProviderErrorSink;
  /** Replaced when Vertex rejects its token: a new client fetches a new one (the old one would reuse its cache). */
  private auth: GoogleAuth;

  constructor(private readonly options: VertexAdapterOptions) {
    this.base = `/v1/projects/${encodeURIComponent(options.project)}/locations/${encodeURIComponent(options.region)}/publishers/anthropic/models/`;
    this.keyFilename = options.keyFilename;
    this.credentialTimeoutMs = options.credentialTimeoutMs ?? 5_000;
    this.report = options.onProviderError ?? ignoreProviderErrors;
    this.auth = this.newAuth();
  }

  refuses(req: OutgoingRequest): string | undefined {
    const pathname = req.path.split('?')[0];
    if (req.method === 'POST' && (pathname === '/v1/messages' || pathname === '/v1/messages/count_tokens')) return undefined;
    return `Google Vertex AI serves only POST /v1/messages and POST /v1/messages/count_tokens (not ${req.method} ${pathname ?? ''})`;
  }

  async prepare(req: OutgoingRequest, abort: CallAbort): Promise<PreparedCall> {
    const body = Buffer.isBuffer(req.body) ? TopLevelObject.parse(req.body) : undefined;
    if (body === undefined) throw notTranslatable('vertex');
    const model = req.model ?? body.string('model');
    if (model === undefined || model === '') throw new GatewayError('NOT_TRANSLATABLE', 'model: a model is required to be served by a vertex upstream');
    // The id becomes a path segment: the grammar keeps it one (no `.`/`..`, no lone surrogate, bounded).
    if (!isModelId(model)) throw new GatewayError('INVALID_MODEL', MODEL_ID_REFUSAL);
    const countTokens = req.path.split('?')[0] === '/v1/messages/count_tokens';
    const version = JSON.stringify(VERTEX_ANTHROPIC_VERSION);
    const stream = !countTokens && body.bool('stream') === true;
    let path: string;
    let sent: Buffer;
    if (countTokens) {
      path = `${this.base}count-tokens:rawPredict`;
      sent = body.edit({ set: { model: JSON.stringify(model), anthropic_version: version } });
    } else {
      path = `${this.base}${modelSegment(model)}:${stream ? 'streamRawPredict' : 'rawPredict'}`;
      sent = body.edit({ remove: ['model'], set: { anthropic_version: version } });
    }
    const authorization = await this.authorization(abort.signal);
    const accept = stream ? 'text/event-stream' : 'application/json';
    const headers = [...onlyHeaders(req.headers, VERTEX_CLIENT_HEADERS), ...ACCEPT_IDENTITY, 'content-type', 'application/json', 'accept', accept, 'authorization', authorization];
    return { path, headers, body: sent, translate: (res) => this.translate(res) };
  }

  async close(): Promise<void> {
    // google-auth-library keeps no timers or sockets of its own between token fetches.
  }

  private newAuth(): GoogleAuth {
    return new GoogleAuth({ scopes: [CLOUD_PLATFORM], ...(this.keyFilename === undefined ? {} : { keyFilename: this.keyFilename }), projectId: this.options.project });
  }

  private async authorization(signal: AbortSignal): Promise<string> {
    try {
      const headers = await withDeadline(this.auth.getRequestHeaders(), this.credentialTimeoutMs, signal);
      const value = headers.get('authorization');
      if (value === null || value === '') throw new Error('no authorization header from Application Default Credentials');
      return value;
    } catch (err) {
      if (signal.aborted) throw err;
      throw new GatewayError('UPSTREAM_AUTH_FAILED', `Google credentials for the vertex upstream could not be obtained (${err instanceof Error ? err.name : 'error'})`, { cause: err });
    }
  }

  private translate(res: ProviderResponse): ProviderResponse | Promise<ProviderResponse> {
    if (res.status < 400) return res;
    const mapped = mapVertexStatus(res.status);
    if (mapped.credentialRejected === true) this.auth = this.newAuth();
    const extra: Record<string, string> = {};
    if (mapped.status === 429 || mapped.status === 529) extra['retry-after'] = headerValue(res.headers, 'retry-after') ?? '1';
    // Without a `request-id` from Vertex the gateway mints one: the client's handle on the log line.
    const requestId = answerRequestId(headerValue(res.headers, 'request-id'));
    return rewrittenAnswer(
      res,
      mapped.status,
      rewrittenHeaders(res.headers, 'application/json', requestId, extra),
      (whole) => {
        const fields = errorFields(whole);
        const refined = refineVertex(mapped, fields.className);
        const kept = clientText(refined, fields.message);
        if (kept === undefined) {
          this.report({ kind: 'vertex', providerStatus: res.status, providerType: bounded(fields.className, 256), status: refined.status, upstreamRequestId: requestId, providerMessage: bounded(fields.text) });
        }
        return mappedErrorBody(refined, kept, requestId);
      },
      'Vertex AI',
    );
  }
}
