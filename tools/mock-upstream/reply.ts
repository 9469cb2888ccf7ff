import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { errorBody } from './error-body.js';
import type { FaultKind } from './faults.js';
import { ChunkWriter, type EventWriter } from './sse.js';

/**
 * Writes one API response the way the real API frames it (request-id, organization and rate-limit
 * headers on every answer; Anthropic-shaped error bodies), with the body faults of the request applied.
 */

export interface ReplyOptions {
  requestId: string;
  /** The fault kind of this request; body-level kinds (gzip, stall-body, midstream-reset) act here. */
  fault?: FaultKind;
  /** retry-after override for error answers. */
  retryAfter?: string;
  /** When set, JSON object bodies carry these under `_received_headers`. */
  echo?: IncomingHttpHeaders;
  /** Told when an SSE answer opens and when it closes (concurrent-stream statistics). */
  streams?: { opened(): void; closed(): void };
  /** Headers that replace the defaults on every answer (a key's own rate-limit headers). */
  headers?: Record<string, string>;
  /** A provider's own framing (Bedrock, Vertex AI) instead of Anthropic's. */
  framing?: ProviderFraming;
}

/** How a provider frames what the mock's handlers produce in Anthropic's terms. */
export interface ProviderFraming {
  /** Headers on every answer (instead of Anthropic's request-id and rate-limit headers). */
  headers(requestId: string): Record<string, string>;
  /** The provider's error answer for an Anthropic status and message. */
  error(status: number, message: string, requestId: string): { status: number; headers: Record<string, string>; body: Buffer };
  /** Content type of a streamed answer. */
  readonly streamContentType: string;
  /** Re-frames the SSE text the handlers write. */
  eventWriter(writer: ChunkWriter): EventWriter;
}

/** Statuses whose error answers carry retry-after by default, as the API's do. */
const RETRY_AFTER_STATUSES = new Set([429, 503, 529]);

export function apiHeaders(requestId: string): Record<string, string> {
  return {
    'request-id': requestId,
    'anthropic-organization-id': 'org_mock_0000000000',
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-requests-reset': '2099-01-01T00:00:00Z',
    'anthropic-ratelimit-tokens-limit': '2000000',
    'anthropic-ratelimit-tokens-remaining': '1999000',
    'anthropic-ratelimit-tokens-reset': '2099-01-01T00:00:00Z',
    'anthropic-ratelimit-input-tokens-limit': '1600000',
    'anthropic-ratelimit-input-tokens-remaining': '1599000',
    'anthropic-ratelimit-input-tokens-reset': '2099-01-01T00:00:00Z',
    'anthropic-ratelimit-output-tokens-limit': '400000',
    'anthropic-ratelimit-output-tokens-remaining': '399000',
    'anthropic-ratelimit-output-tokens-reset': '2099-01-01T00:00:00Z',
  };
}

export class Reply {
  readonly headers: Record<string, string>;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: ReplyOptions,
  ) {
    this.headers = { ...(options.framing?.headers(options.requestId) ?? apiHeaders(options.requestId)), ...options.headers };
  }

  get requestId(): string {
    return this.options.requestId;
  }

  json(status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
    const echoed = this.options.echo !== undefined && typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...body, _received_headers: this.options.echo } : body;
    this.bytes(status, 'application/json', Buffer.from(JSON.stringify(echoed)), extraHeaders);
  }

  /** An Anthropic-shaped error of the type matching `status`. */
  error(status: number, message: string, extraHeaders: Record<string, string> = {}): void {
    const retryAfter = this.options.retryAfter ?? (RETRY_AFTER_STATUSES.has(status) ? '1' : undefined);
    const framing = this.options.framing;
    if (framing !== undefined) {
      const framed = framing.error(status, message, this.options.requestId);
      this.bytes(framed.status, 'application/json', framed.body, { ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }), ...framed.headers, ...extraHeaders });
      return;
    }
    this.json(status, errorBody(status, message, this.options.requestId), { ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }), ...extraHeaders });
  }

  /** A complete body. stall-body sends its first byte only; midstream-reset sends half, then cuts the connection. */
  bytes(status: number, contentType: string, body: Buffer, extraHeaders: Record<string, string> = {}): void {
    const gzip = this.options.fault === 'gzip';
    const payload = gzip ? gzipSync(body) : body;
    this.res.writeHead(status, {
      ...this.headers,
      ...extraHeaders,
      'content-type': contentType,
      'content-length': String(payload.length),
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    if (this.options.fault === 'stall-body') {
      this.res.write(payload.subarray(0, 1));
    } else if (this.options.fault === 'midstream-reset') {
      this.res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => this.res.destroy());
    } else {
      this.res.end(payload);
    }
  }

  /** Sends the headers of an SSE answer and returns the writer for its events. */
  eventStream(): EventWriter {
    const gzip = this.options.fault === 'gzip';
    const streams = this.options.streams;
    if (streams !== undefined && !this.res.destroyed) {
      streams.opened();
      this.res.once('close', () => streams.closed());
    }
    this.res.writeHead(200, {
      ...this.headers,
      'content-type': this.options.framing?.streamContentType ?? 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    const writer = new ChunkWriter(this.res, gzip);
    return this.options.framing?.eventWriter(writer) ?? writer;
  }
}
