import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { forwardRequestHeaders, forwardResponseHeaders, headerValue } from '../upstream/headers.js';
import { isAbort, translateUpstreamError, type UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import { isBatchPath, rewriteResultsUrls } from '../upstream/batch-results-url.js';
import { hasBody, isJson, readBody } from './body.js';
import { contextOf } from './context.js';
import { relayBody } from './relay.js';

/** Batch answers are small JSON objects; larger ones are relayed untouched rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;

export interface ProxyDeps {
  config: Config;
  upstream: UpstreamClient;
  logger: Logger;
}

/** The path to forward: the client's path and query, without the gateway's own BASE_PATH. */
export function upstreamPath(url: string, basePath: string): { path: string; viaBasePath: boolean } {
  if (basePath !== '' && url.startsWith(basePath) && (url.length === basePath.length || '/?'.includes(url[basePath.length] as string))) {
    const rest = url.slice(basePath.length);
    return { path: rest === '' || rest.startsWith('?') ? '/' + rest : rest, viaBasePath: true };
  }
  return { path: url, viaBasePath: false };
}

function gatewayBaseUrl(req: Request, config: Config, viaBasePath: boolean): string {
  const root = config.publicUrl ?? `${req.protocol}://${req.headers.host ?? `${config.host}:${config.port}`}`;
  return viaBasePath ? root + config.basePath : root;
}

function isEventStream(res: UpstreamResponse): boolean {
  return headerValue(res.headers, 'content-type')?.startsWith('text/event-stream') === true;
}

async function readAll(body: UpstreamResponse['body'], limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Forwards one request upstream and relays the answer. Upstream error responses are answers and
 * pass through unchanged; transport failures surface as GatewayErrors for the error handler.
 */
export function proxyHandler(deps: ProxyDeps): RequestHandler {
  const { config, upstream } = deps;
  const injectApiKey = config.anthropicApiKey;

  return async (req, res) => {
    const ctx = contextOf(req);
    const { path, viaBasePath } = upstreamPath(req.originalUrl, config.basePath);

    // The upstream call belongs to this client: when the client goes away, so does the call.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });

    const headers = forwardRequestHeaders(req.rawHeaders, { injectApiKey });
    let body: Buffer | IncomingMessage | null = null;
    if (hasBody(req)) {
      if (isJson(req)) {
        body = (await readBody(req, config.maxBodyBytes)).bytes;
      } else {
        // Uploads that are not JSON (multipart files) stream through without being held in memory.
        const length = req.headers['content-length'];
        if (length !== undefined) headers.push('content-length', length);
        body = req;
      }
    }

    let answer: UpstreamResponse;
    try {
      answer = await upstream.send({ method: req.method, path, headers, body, signal: abort.signal });
    } catch (err) {
      if (isAbort(err)) return;
      throw translateUpstreamError(err, 'headers');
    }
    ctx.upstreamRequestId = answer.requestId;

    if (isBatchPath(path) && answer.status < 300 && headerValue(answer.headers, 'content-type')?.includes('json') === true) {
      await sendRewrittenBatch(req, res, answer, config, viaBasePath);
      return;
    }

    const stream = isEventStream(answer);
    writeHead(res, answer, answer.decoded);
    if (stream) res.flushHeaders();
    const result = await relayBody(answer.body, res, stream);
    if (result.upstreamError !== undefined) {
      const err = translateUpstreamError(result.upstreamError, 'body');
      ctx.errorCode = err.code;
      deps.logger.warn({ code: err.code, path: req.path, upstreamRequestId: answer.requestId }, err.message);
    }
  };
}

function writeHead(res: ServerResponse, answer: UpstreamResponse, bodyChanged: boolean): void {
  for (const [name, value] of forwardResponseHeaders(answer.headers, bodyChanged)) res.setHeader(name, value);
  res.writeHead(answer.status);
}

async function sendRewrittenBatch(
  req: Request,
  res: ServerResponse,
  answer: UpstreamResponse,
  config: Config,
  viaBasePath: boolean,
): Promise<void> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readAll(answer.body, MAX_REWRITE_BYTES);
  } catch (err) {
    throw translateUpstreamError(err, 'body');
  }
  if (bytes === undefined) {
    // Too large to rewrite safely: the relay already consumed part of it, so fail honestly.
    throw translateUpstreamError(new Error('batch response exceeds rewrite limit'), 'body');
  }
  const rewritten = rewriteResultsUrls(bytes, config.upstreamBaseUrl, gatewayBaseUrl(req, config, viaBasePath));
  const out = rewritten ?? bytes;
  for (const [name, value] of forwardResponseHeaders(answer.headers, true)) res.setHeader(name, value);
  res.setHeader('content-length', out.length);
  res.writeHead(answer.status);
  res.end(out);
}
