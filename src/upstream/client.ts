import type { buildConnector as UndiciConnector } from 'undici';
import { Pool, buildConnector, errors as undiciErrors } from './undici-parts.js';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { pipeline } from 'node:stream';
import { GatewayError } from '../core/errors.js';
import { headerValue, type UpstreamHeaders } from './headers.js';
import { ConnectionPermits, PoolWaitTimeout } from './permits.js';
import { CallStop } from '../core/call-stop.js';
import { DirectBody, type DirectHead } from './direct-body.js';

export interface UpstreamClientOptions {
  origin: string;
  pathPrefix: string;
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Longest a request waits for a free connection (HTTP/2: a free stream) before failing with 529. */
  poolWaitMs: number;
  /** Speak HTTP/2 upstream: TLS with ALPN `h2` for https origins, prior-knowledge h2c for http ones. */
  http2: boolean;
  /** Concurrent streams per HTTP/2 connection (the server's SETTINGS_MAX_CONCURRENT_STREAMS may lower it). */
  http2MaxStreams: number;
  /** Extra trusted CA certificates (PEM) for an https upstream, e.g. a private CA; undefined = the system's. */
  ca?: string | undefined;
  /** Told about waits for a connection (metrics); called only off the fast path. */
  poolObserver?: PoolObserver | undefined;
}

export interface PoolObserver {
  /** A request found every connection busy and got one after `seconds`. */
  waited(seconds: number): void;
  /** A request found every connection busy and none became free before the deadline. */
  timedOut(): void;
}

/** What the pool holds right now (read at scrape time). */
export interface PoolSnapshot {
  /** Requests that may be in progress upstream at once (connections, or connections x streams for HTTP/2). */
  capacity: number;
  /** Requests holding a connection (HTTP/2: a stream). */
  active: number;
  /** Requests waiting for one: the gateway's queue plus undici's own (which should stay empty). */
  queued: number;
  /** Open upstream connections. */
  connections: number;
}

export interface UpstreamRequest {
  method: string;
  /** Path and query as the client sent them (after the gateway's own BASE_PATH is removed). */
  path: string;
  headers: string[];
  body: Buffer | Readable | null;
  /** The call's stop (core/call-stop.ts) or any AbortSignal. */
  signal: AbortSignal | CallStop;
}

export interface UpstreamResponse {
  status: number;
  headers: UpstreamHeaders;
  /** Identity-encoded body: compressed upstream answers are decoded here, so every consumer can read usage. */
  body: Readable;
  /** True when the bytes differ from the upstream's (framing headers must not be forwarded). */
  decoded: boolean;
  /**
   * The body's end, when it comes, is marked by its framing: a content-length, a chunked body's
   * terminating chunk, an HTTP/2 stream's end (undici fails a body that stops short of either).
   * False for a body delimited only by the closing connection: a cut cannot be told from an end.
   */
  delimited: boolean;
  requestId: string | undefined;
}

/** An answer read without a stream in between (`sendDirect`): the body is undici's handler itself, unless it had to be decoded. */
export interface DirectResponse extends Omit<UpstreamResponse, 'body' | 'headers'> {
  /** The head as read from undici's raw list: `head.forwarded` is what the client gets (framing dropped when decoded). */
  head: DirectHead;
  body: DirectBody | Readable;
}

/** Our connector's code for a connection that did not negotiate HTTP/2 under UPSTREAM_HTTP2=on. */
const H2_REFUSED = 'UND_ERR_CONNECT_H2_REFUSED';
/** Failures to establish a connection: nothing of the request was sent. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', H2_REFUSED]);
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
    return new GatewayError('NOT_FORWARDABLE', 'The request cannot be forwarded upstream as sent', { cause: err });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new GatewayError('UPSTREAM_HEADERS_TIMEOUT', 'Upstream did not send response headers in time', { cause: err });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_BODY_TIMEOUT', 'Upstream response body stalled past the idle timeout', { cause: err });
  }
  if (CONNECT_CODES.has(code)) {
    return new GatewayError('UPSTREAM_CONNECT_FAILED', `Upstream unreachable (${code})`, { cause: err });
  }
  if (UNREACHABLE_CODES.has(code) || phase === 'headers') {
    const what = phase === 'headers' ? 'Upstream unreachable' : 'Upstream connection failed mid-response';
    return new GatewayError('UPSTREAM_UNREACHABLE', `${what} (${code})`, { cause: err });
  }
  return new GatewayError('UPSTREAM_RESPONSE_INVALID', `Upstream response could not be read (${code})`, { cause: err });
}

/** Why a request got no head, as `send` reports it: the caller's abort as it is, anything else translated. */
function headFailure(err: unknown): Error {
  const failure = err ?? new Error('upstream request failed');
  return isAbort(failure) ? (failure as Error) : translateUpstreamError(failure, 'headers');
}

/**
 * Connections for UPSTREAM_HTTP2=on: https origins offer `h2` in ALPN, http origins speak h2c
 * with prior knowledge. A connection that did not end up on h2 is refused with a clear error rather
 * than used as HTTP/1.1 (where the client's stream-per-request settings would pipeline POSTs).
 */
function h2OnlyConnector(options: UpstreamClientOptions): UndiciConnector.connector {
  const https = options.origin.startsWith('https:');
  // `useH2c` (undici 7.9+: the socket speaks h2 from its first byte) is not in undici's BuildOptions type yet.
  const base = buildConnector({
    timeout: options.connectTimeoutMs,
    allowH2: true,
    ...(https ? (options.ca === undefined ? {} : { ca: options.ca }) : { useH2c: true }),
  });
  return (opts, callback) => {
    base(opts, (err, socket) => {
      if (err !== null) {
        callback(err, null);
        return;
      }
      const alpn = (socket as { alpnProtocol?: string | false }).alpnProtocol;
      if (alpn !== 'h2') {
        socket.destroy();
        const refused = new Error(`upstream did not negotiate HTTP/2 (ALPN ${String(alpn)}); set UPSTREAM_HTTP2=off for this upstream`) as Error & { code: string };
        refused.code = H2_REFUSED;
        callback(refused, null);
        return;
      }
      callback(null, socket);
    });
  };
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

/** HTTP/1.1: a body framed by content-length or chunked encoding, or one the status says is empty (RFC 9112 §6.3). */
function delimitedByHeaders(status: number, headers: UpstreamHeaders): boolean {
  return delimitedBy(status, headers['content-length'] !== undefined, headerValue(headers, 'transfer-encoding'));
}

function delimitedBy(status: number, hasContentLength: boolean, transferEncoding: string | undefined): boolean {
  if (status === 204 || status === 304) return true;
  if (hasContentLength) return true;
  // chunked must be the last coding; otherwise the connection's close ends the body (RFC 9112 §6.3).
  return transferEncoding?.trim().toLowerCase().endsWith('chunked') === true;
}

/**
 * A pooled keep-alive client for one upstream origin. Capacity is counted in permits
 * (src/upstream/permits.ts) so that a wait for a connection is bounded, abortable and visible.
 */
export class UpstreamClient {
  readonly origin: string;
  readonly pathPrefix: string;
  private readonly pool: Pool;
  private readonly permits: ConnectionPermits;
  private readonly poolWaitMs: number;
  private readonly http2: boolean;
  private readonly observer: PoolObserver | undefined;
  /** Gives one permit back: the release every direct body gets (one function per client, not per call). */
  private readonly releasePermit = (): void => this.permits.release();

  constructor(options: UpstreamClientOptions) {
    this.origin = options.origin;
    this.pathPrefix = options.pathPrefix;
    this.poolWaitMs = options.poolWaitMs;
    this.http2 = options.http2;
    this.observer = options.poolObserver;
    const streams = options.http2 ? options.http2MaxStreams : 1;
    this.permits = new ConnectionPermits(options.connections * streams);
    this.pool = new Pool(options.origin, {
      connections: options.connections,
      // undici gates requests per connection on `pipelining` for HTTP/2 too (nodejs/undici#4143):
      // without it an h2 connection carries one stream at a time. HTTP/1.1 never pipelines.
      pipelining: streams,
      maxConcurrentStreams: streams,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      connect: options.http2 ? h2OnlyConnector(options) : { timeout: options.connectTimeoutMs, ...(options.ca === undefined ? {} : { ca: options.ca }) },
    });
  }

  /** Capacity and occupancy, for metrics. */
  snapshot(): PoolSnapshot {
    const stats = this.pool.stats;
    return { capacity: this.permits.capacity, active: this.permits.active, queued: this.permits.queued + stats.pending, connections: stats.connected };
  }

  /** Waits for a permit at most poolWaitMs; a timeout becomes a 529 the gateway raised itself. */
  private async waitForPermit(signal: AbortSignal): Promise<void> {
    const started = performance.now();
    try {
      await this.permits.wait(this.poolWaitMs, signal);
    } catch (err) {
      if (!(err instanceof PoolWaitTimeout)) throw err; // the caller's abort
      this.observer?.timedOut();
      throw new GatewayError(
        'UPSTREAM_POOL_TIMEOUT',
        `Gateway overloaded: all ${this.permits.capacity} upstream ${this.http2 ? 'streams' : 'connections'} stayed busy for ${this.poolWaitMs} ms (UPSTREAM_POOL_WAIT_MS). Retry shortly.`,
        { cause: err, headers: { 'retry-after': '1' } },
      );
    }
    this.observer?.waited((performance.now() - started) / 1000);
  }

  /**
   * Sends one request. Resolves with the response once headers arrived (any status: upstream
   * error responses are answers, not failures); rejects with a GatewayError for transport
   * failures, or with the abort reason when `signal` fired.
   */
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    // The fast path takes a free permit synchronously (no extra promise turn per request).
    if (!this.permits.tryAcquire()) await this.waitForPermit(req.signal instanceof CallStop ? req.signal.signal : req.signal);
    let res;
    try {
      res = await this.pool.request({
        path: this.pathPrefix + req.path,
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
        // undici serialises non-idempotent requests on one h2 session (nodejs/undici#5390); streams
        // are independent in HTTP/2, and the connector guarantees every connection speaks h2.
        ...(this.http2 ? { idempotent: true } : {}),
      });
    } catch (err) {
      this.permits.release();
      if (isAbort(err)) throw err;
      throw translateUpstreamError(err, 'headers');
    }
    // The connection (or stream) is busy until the raw body ends or is destroyed; 'close' fires once either way.
    res.body.once('close', () => this.permits.release());
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
      delimited: this.http2 || delimitedByHeaders(res.statusCode, headers),
      requestId: headerValue(headers, 'request-id'),
    };
  }

  /**
   * Sends one request like `send`, for a caller that reads the answer as it comes (the flight):
   * the body is undici's dispatch handler itself (upstream/direct-body.ts), with no body stream, async
   * resource or abort-signal wiring of undici's `request()` per call. A compressed answer is decoded
   * through a stream, as by `send`. Same failures, same permit accounting. With a free connection
   * (the common case) the one promise is the dispatch's own, settled with the answer at its head.
   */
  sendDirect(req: UpstreamRequest): Promise<DirectResponse> {
    if (this.permits.tryAcquire()) return this.dispatchDirect(req);
    return this.waitForPermit(req.signal instanceof CallStop ? req.signal.signal : req.signal).then(() => this.dispatchDirect(req));
  }

  /** The answer at its head, a compressed one with its decoder in front of its body. */
  private directResponse(head: DirectHead, body: DirectBody): DirectResponse {
    const decoder = decoderFor(head.contentEncoding);
    if (decoder !== undefined) head.dropBodyFraming();
    return {
      status: head.status,
      head,
      body: decoder === undefined ? body : (pipeline(body.readable(), decoder, () => undefined) as unknown as Readable),
      decoded: decoder !== undefined,
      delimited: this.http2 || delimitedBy(head.status, head.hasContentLength, head.transferEncoding),
      requestId: head.requestId,
    };
  }

  /**
   * Dispatches with a DirectBody as the handler; resolves with the answer at its head, or rejects as
   * `send` does (the caller's abort as it is, anything else translated). The permit is held, and
   * given back by the handler.
   */
  private dispatchDirect(req: UpstreamRequest): Promise<DirectResponse> {
    return new Promise((resolve, reject) => {
      try {
        const signal = req.signal;
        const onAbort = (): void => body.stop((signal.reason as Error | undefined) ?? new undiciErrors.RequestAbortedError());
        const unsubscribe =
          signal instanceof CallStop
            ? () => {
                signal.off('abort', onAbort);
              }
            : () => {
                signal.removeEventListener('abort', onAbort);
              };
        const body: DirectBody = new DirectBody(
          (err, head) => {
            if (head === undefined) reject(headFailure(err));
            else resolve(this.directResponse(head, body));
          },
          this.releasePermit,
          req.body,
          unsubscribe,
        );
        if (signal.aborted) {
          body.stop((signal.reason as Error | undefined) ?? new undiciErrors.RequestAbortedError());
        } else if (signal instanceof CallStop) {
          // `on`, not `once` (no wrapper per call): the stop fires once, and the body unsubscribes when undici is done.
          signal.on('abort', onAbort);
        } else {
          signal.addEventListener('abort', onAbort, { once: true });
        }
        this.pool.dispatch(
          {
            path: this.pathPrefix + req.path,
            method: req.method,
            headers: req.headers,
            body: req.body,
            // See `send`: h2 streams are independent (undefined is undici's default, as when absent).
            idempotent: this.http2 ? true : undefined,
          },
          body,
        );
      } catch (err) {
        reject(headFailure(err));
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

}
