import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';

import { pipeline } from 'node:stream';
import { GatewayError } from '../../core/errors.js';
import { ACCEPT_IDENTITY, headerValue } from '../headers.js';
import { notTranslatable } from './anthropic.js';
import { EventStreamToSse } from './bedrock-stream.js';
import { withDeadline } from './deadline.js';
import { listValues, onlyHeaders } from '../header-list.js';
import { isModelId, MODEL_ID_REFUSAL } from '../model-id.js';
import { TopLevelObject } from './json-edit.js';
import type { CallAbort, OutgoingRequest, PreparedCall, ProviderResponse, UpstreamAdapter } from './kind.js';
import { answerRequestId, bounded, clientText, ignoreProviderErrors, mapBedrockError, mappedErrorBody, MAX_LOGGED_MESSAGE, type ProviderErrorSink } from './provider-errors.js';
import { invalidAnswer, rewrittenAnswer, rewrittenHeaders } from './responses.js';

/** SHA-256 and HMAC from node:crypto (the AWS SDK's own choice in Node), for SigV4. */
const Sha256Hash = Hash.bind(null, 'sha256');

/**
 * Amazon Bedrock's InvokeModel API speaking for Anthropic's Messages API.
 *
 * Requests: POST /v1/messages -> /model/{modelId}/invoke, or /invoke-with-response-stream when the
 * body says `"stream": true`; POST /v1/messages/count_tokens -> /model/{modelId}/count-tokens with
 * `{"input":{"invokeModel":{"body":"<base64 of the invoke body>"}}}` (Bedrock Runtime CountTokens:
 * the body is a blob, base64 in its JSON protocol). The body loses `model` and `stream`, gains
 * `anthropic_version: "bedrock-2023-05-31"`, and `anthropic-beta` header values move into
 * `anthropic_beta: [...]`; every other byte is kept. Signed with SigV4 (service `bedrock`) from the
 * standard AWS credential chain, or sent with a Bedrock API key as `Authorization: Bearer`.
 *
 * Answers: invoke's body IS the Anthropic Message JSON (passed through); the event stream becomes
 * SSE (bedrock-stream.ts); `{"inputTokens": n}` becomes `{"input_tokens": n}`; errors take the
 * Anthropic shape and status, in the gateway's words (provider-errors.ts). An answer that cannot be
 * translated (a count without its count, a stream that is not an event stream, a body too large to
 * read whole) is refused with a 502 before its head: clients always get a status line.
 */

export const BEDROCK_ANTHROPIC_VERSION = 'bedrock-2023-05-31';

/** AWS credentials as the SDK's providers give them. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  readonly expiration?: Date | undefined;
}

/** A memoising provider (the SDK's chain is one): `forceRefresh` skips its cache. */
export type AwsCredentialSource = (options?: { forceRefresh?: boolean }) => Promise<AwsCredentials>;

export interface BedrockAdapterOptions {
  /** Base URL of the runtime endpoint (may carry a path prefix), e.g. https://bedrock-runtime.us-east-1.amazonaws.com. */
  url: string;
  region: string;
  /** Shared-config profile for the default chain. */
  profile?: string | undefined;
  /** A Bedrock API key: sent as a bearer instead of signing. */
  bearerToken?: string | undefined;
  /** Overrides the default chain (tests, embedding). */
  credentials?: AwsCredentialSource | undefined;
  /** Longest a credential fetch may take before the call fails with UPSTREAM_AUTH_FAILED. Default 5 s. */
  credentialTimeoutMs?: number | undefined;
  /** Where provider error texts kept from clients are reported (the log). */
  onProviderError?: ProviderErrorSink | undefined;
}

/**
 * Client headers that reach Bedrock as headers: none. InvokeModel documents `Content-Type`, `Accept`
 * (the adapter's own, signed), and `X-Amzn-Bedrock-*` (trace, guardrail, performance, service tier),
 * which are AWS control settings, the operator's and never a client's. `anthropic-beta` is read into
 * the body's `anthropic_beta`, `anthropic-version` is the body's fixed `anthropic_version`. So nothing
 * a client sends can sit beside the signature: no `x-amz-*` (date, security token, content hash),
 * `x-amzn-*`, `authorization` or `host`. The request carries exactly: this list's headers, the
 * gateway's `accept-encoding`, `content-type`, `accept` and the credential (SigV4 or bearer).
 */
export const BEDROCK_CLIENT_HEADERS: ReadonlySet<string> = new Set<string>();

const EVENT_STREAM = 'application/vnd.amazon.eventstream';

/** A Bedrock error body's message: `{"message"}` (or `{"Message"}`) when it is JSON; otherwise its text, for the log only. */
function errorMessage(whole: Buffer): { json: string | undefined; text: string | undefined } {
  const object = TopLevelObject.parse(whole);
  const json = object?.string('message') ?? object?.string('Message');
  if (json !== undefined) return { json, text: json };
  return { json: undefined, text: whole.length > 0 ? whole.toString('utf8', 0, Math.min(whole.length, MAX_LOGGED_MESSAGE)) : undefined };
}

/**
 * The mapped error answer for a Bedrock error response. The client reads the gateway's reason;
 * the provider's text reaches it only for a `clientMessage` class (provider-errors.ts), and is
 * otherwise reported for the log with the request id the client is given.
 */
function errorAnswer(res: ProviderResponse, onCredentialRejected: () => void, report: ProviderErrorSink): Promise<ProviderResponse> {
  const errorType = headerValue(res.headers, 'x-amzn-errortype');
  const mapped = mapBedrockError(res.status, errorType);
  if (mapped.credentialRejected === true) onCredentialRejected();
  const requestId = answerRequestId(headerValue(res.headers, 'request-id') ?? headerValue(res.headers, 'x-amzn-requestid'));
  const extra: Record<string, string> = {};
  if (mapped.status === 429 || mapped.status === 529) extra['retry-after'] = headerValue(res.headers, 'retry-after') ?? '1';
  const headers = rewrittenHeaders(res.headers, 'application/json', requestId, extra);
  return rewrittenAnswer(
    res,
    mapped.status,
    headers,
    (whole) => {
      const message = errorMessage(whole);
      const kept = clientText(mapped, message.json);
      if (kept === undefined) {
        report({ kind: 'bedrock', providerStatus: res.status, providerType: bounded(errorType, 256), status: mapped.status, upstreamRequestId: requestId, providerMessage: bounded(message.text) });
      }
      return mappedErrorBody(mapped, kept, requestId);
    },
    'Bedrock',
  );
}

/** CountTokens' `{"inputTokens": n}` as Anthropic's `{"input_tokens": n}`; any other body is the provider's fault (502 before the head). */
function countTokensBody(whole: Buffer): Buffer {
  const raw = TopLevelObject.parse(whole)?.raw('inputTokens')?.toString('latin1');
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) throw new GatewayError('UPSTREAM_RESPONSE_INVALID', 'Bedrock CountTokens answer has no inputTokens count');
  return Buffer.from(`{"input_tokens":${raw}}`);
}

export class BedrockAdapter implements UpstreamAdapter {
  readonly kind = 'bedrock' as const;
  private readonly base: URL;
  private readonly bearerToken: string | undefined;
  private readonly source: AwsCredentialSource;
  private readonly signer: SignatureV4;
  private readonly credentialTimeoutMs: number;
  private readonly report: ProviderErrorSink;
  /** Set when Bedrock rejected the credentials in use: the next fetch skips the provider's cache (one refresh for many callers). */
  private refreshNext = false;

  constructor(options: BedrockAdapterOptions) {
    this.base = new URL(options.url);
    this.bearerToken = options.bearerToken;
    this.credentialTimeoutMs = options.credentialTimeoutMs ?? 5_000;
    this.report = options.onProviderError ?? ignoreProviderErrors;
    this.source = options.credentials ?? fromNodeProviderChain(options.profile === undefined ? {} : { profile: options.profile });
    this.signer = new SignatureV4({
      service: 'bedrock',
      region: options.region,
      sha256: Sha256Hash,
      credentials: () => this.credentials(),
    });
  }

  refuses(req: OutgoingRequest): string | undefined {
    const pathname = req.path.split('?')[0];
    if (req.method === 'POST' && (pathname === '/v1/messages' || pathname === '/v1/messages/count_tokens')) return undefined;
    return `Amazon Bedrock serves only POST /v1/messages and POST /v1/messages/count_tokens (not ${req.method} ${pathname ?? ''})`;
  }

  async prepare(req: OutgoingRequest, abort: CallAbort): Promise<PreparedCall> {
    const body = Buffer.isBuffer(req.body) ? TopLevelObject.parse(req.body) : undefined;
    if (body === undefined) throw notTranslatable('bedrock');
    const model = req.model ?? body.string('model');
    if (model === undefined || model === '') throw new GatewayError('NOT_TRANSLATABLE', 'model: a model is required to be served by a bedrock upstream');
    // The id becomes a path segment: the grammar keeps it one (no `.`/`..`, no lone surrogate, bounded).
    if (!isModelId(model)) throw new GatewayError('INVALID_MODEL', MODEL_ID_REFUSAL);
    const countTokens = req.path.split('?')[0] === '/v1/messages/count_tokens';
    const stream = !countTokens && body.bool('stream') === true;
    const betas = listValues(req.headers, 'anthropic-beta');
    const set: Record<string, string> = { anthropic_version: JSON.stringify(BEDROCK_ANTHROPIC_VERSION) };
    if (betas.length > 0) set.anthropic_beta = JSON.stringify(betas);
    const invokeBody = body.edit({ remove: ['model', 'stream'], set });
    const action = countTokens ? 'count-tokens' : stream ? 'invoke-with-response-stream' : 'invoke';
    const path = `/model/${encodeURIComponent(model)}/${action}`;
    const sent = countTokens ? Buffer.from(`{"input":{"invokeModel":{"body":"${invokeBody.toString('base64')}"}}}`) : invokeBody;
    const accept = stream ? EVENT_STREAM : 'application/json';
    const headers = [...onlyHeaders(req.headers, BEDROCK_CLIENT_HEADERS), ...ACCEPT_IDENTITY, 'content-type', 'application/json', 'accept', accept, ...(await this.authHeaders(path, accept, sent, abort.signal))];
    return {
      path,
      headers,
      body: sent,
      translate: (res) => this.translate(res, countTokens, stream),
    };
  }

  /** Authorization (and x-amz-date / x-amz-security-token) for the request as undici will send it. */
  private async authHeaders(path: string, accept: string, body: Buffer, signal: AbortSignal): Promise<string[]> {
    if (this.bearerToken !== undefined) return ['authorization', `Bearer ${this.bearerToken}`];
    const fullPath = this.base.pathname.replace(/\/+$/, '') + path;
    let signed;
    try {
      // Signed: exactly the headers sent with these values (host as undici derives it from the origin).
      signed = await withDeadline(
        this.signer.sign({
          method: 'POST',
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          ...(this.base.port === '' ? {} : { port: Number(this.base.port) }),
          path: fullPath,
          query: {},
          headers: { host: this.base.host, 'content-type': 'application/json', accept },
          body,
        }),
        this.credentialTimeoutMs,
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw new GatewayError('UPSTREAM_AUTH_FAILED', `AWS credentials for the bedrock upstream could not be obtained (${err instanceof Error ? err.name : 'error'})`, { cause: err });
    }
    const out: string[] = [];
    for (const [name, value] of Object.entries(signed.headers)) {
      const lower = name.toLowerCase();
      if (lower === 'authorization' || lower.startsWith('x-amz-')) out.push(lower, value);
    }
    return out;
  }

  private async credentials(): Promise<AwsCredentials> {
    if (!this.refreshNext) return this.source();
    this.refreshNext = false;
    return this.source({ forceRefresh: true });
  }

  private translate(res: ProviderResponse, countTokens: boolean, stream: boolean): ProviderResponse | Promise<ProviderResponse> {
    if (res.status >= 400) return errorAnswer(res, () => (this.refreshNext = true), this.report);
    if (res.status < 200 || res.status >= 300) return invalidAnswer(res, `Bedrock answered with HTTP status ${res.status}`);
    const requestId = headerValue(res.headers, 'x-amzn-requestid');
    if (countTokens) return rewrittenAnswer(res, res.status, rewrittenHeaders(res.headers, 'application/json', requestId), countTokensBody, 'Bedrock');
    if (!stream) {
      if (requestId === undefined || headerValue(res.headers, 'request-id') !== undefined) return res;
      return { ...res, headers: { ...res.headers, 'request-id': requestId } };
    }
    // Anything but an event stream (a JSON body, an HTML page) cannot be translated: refused before the head.
    if (headerValue(res.headers, 'content-type')?.startsWith(EVENT_STREAM) !== true) return invalidAnswer(res, 'Bedrock answered a stream request with something other than an event stream');
    const streamRequestId = answerRequestId(headerValue(res.headers, 'request-id') ?? requestId);
    const sse = new EventStreamToSse(this.report, streamRequestId);
    // pipeline() carries errors and destruction both ways: a consumer that leaves releases the connection.
    pipeline(res.body, sse, () => undefined);
    return {
      status: res.status,
      headers: rewrittenHeaders(res.headers, 'text/event-stream; charset=utf-8', streamRequestId, { 'cache-control': 'no-cache' }),
      body: sse,
      decoded: true,
    };
  }
}
