import { Agent, errors as undiciErrors } from 'undici';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { pipeline } from 'node:stream';
import { GatewayError } from '../errors.js';
import { headerValue, type UpstreamHeaders } from './headers.js';

export interface UpstreamClientOptions {
  origin: string;
  pathPrefix: string;
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface UpstreamRequest {
  method: string;
  /** Path and query as the client sent them (after the gateway's own BASE_PATH is removed). */
  path: string;
  headers: string[];
  body: Buffer | Readable | null;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: UpstreamHeaders;
  /** Identity-encoded body: compressed upstream answers are decoded here, so every consumer can read usage. */
  body: Readable;
  /** True when the bytes differ from the upstream's (framing headers must not be forwarded). */
  decoded: boolean;
  requestId: string | undefined;
}

/** Failures to establish a connection: nothing of the request was sent. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const UNREACHABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** True when the failure is the caller's own abort (client went away), not an upstream fault. */
export function isAbort(err: unknown): boolean {
  return (
    err instanceof undiciErrors.RequestAbortedError ||
    (err instanceof Error && err.name === 'AbortError') ||
    errorCode(err) === 'UND_ERR_ABORTED' ||
    errorCode(err) === 'ABORT_ERR'
  );
}

/**
 * The upstream boundary: every transport failure becomes a GatewayError here and nowhere else.
 * Messages name the failure class, never a URL with credentials or a header value.
 */
export function translateUpstreamError(err: unknown, phase: 'headers' | 'body'): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = errorCode(err) ?? 'UNKNOWN';
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    // Nothing left the gateway: undici refused the request itself. The client's request is at fault.
    return new GatewayError('NOT_FORWARDABLE', 400, 'The request cannot be forwarded upstream as sent', { cause: err });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new GatewayError('UPSTREAM_HEADERS_TIMEOUT', 504, 'Upstream did not send response headers in time', { cause: err });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_BODY_TIMEOUT', 504, 'Upstream response body stalled past the idle timeout', { cause: err });
  }
  if (CONNECT_CODES.has(code)) {
    return new GatewayError('UPSTREAM_CONNECT_FAILED', 502, `Upstream unreachable (${code})`, { cause: err });
  }
  if (UNREACHABLE_CODES.has(code) || phase === 'headers') {
    const what = phase === 'headers' ? 'Upstream unreachable' : 'Upstream connection failed mid-response';
    return new GatewayError('UPSTREAM_UNREACHABLE', 502, `${what} (${code})`, { cause: err });
  }
  return new GatewayError('UPSTREAM_RESPONSE_INVALID', 502, `Upstream response could not be read (${code})`, { cause: err });
}

function decoderFor(encoding: string | undefined): NodeJS.ReadWriteStream | undefined {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

/** A pooled keep-alive client for one upstream origin. */
export class UpstreamClient {
  readonly origin: string;
  readonly pathPrefix: string;
  private readonly agent: Agent;

  constructor(options: UpstreamClientOptions) {
    this.origin = options.origin;
    this.pathPrefix = options.pathPrefix;
    // An Agent keeps one Pool per origin; `connections` bounds each pool's sockets.
    this.agent = new Agent({
      connections: options.connections,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      connect: { timeout: options.connectTimeoutMs },
    });
  }

  /**
   * Sends one request. Resolves with the response once headers arrived (any status: upstream
   * error responses are answers, not failures); rejects with a GatewayError for transport
   * failures, or with the abort reason when `signal` fired.
   */
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    let res;
    try {
      res = await this.agent.request({
        origin: this.origin,
        path: this.pathPrefix + req.path,
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
      });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw translateUpstreamError(err, 'headers');
    }
    const headers = res.headers;
    const decoder = decoderFor(headerValue(headers, 'content-encoding'));
    let body: Readable = res.body;
    if (decoder !== undefined) {
      // pipeline() propagates errors and destruction both ways; its callback error is observed by consumers of `decoded`.
      body = pipeline(res.body, decoder, () => undefined) as unknown as Readable;
    }
    return {
      status: res.statusCode,
      headers,
      body,
      decoded: decoder !== undefined,
      requestId: headerValue(headers, 'request-id'),
    };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

}
