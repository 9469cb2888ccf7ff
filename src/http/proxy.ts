import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { endpointLabel } from '../observability/labels.js';
import { UsageMeter } from '../upstream/usage.js';
import { recordCoalescedDelivery, recordUpstreamCall } from '../pipeline/accounting.js';
import { forwardRequestHeaders, forwardResponseHeaders, headerValue } from '../upstream/headers.js';
import { isAbort, translateUpstreamError, type UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import { isBatchPath, rewriteResultsUrls } from '../upstream/batch-results-url.js';
import { fingerprint } from '../pipeline/fingerprint.js';
import { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import type { Flight, FlightSource } from '../pipeline/coalesce/flight.js';
import { isCoalescable, optedOut, ROLE_HEADER, type CoalesceRole } from '../pipeline/coalesce/policy.js';
import { hasBody, isJson, readBody } from './body.js';
import { contextOf } from './context.js';

/** Batch answers are small JSON objects; larger ones are refused rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;

export interface ProxyDeps {
  config: Config;
  upstream: UpstreamClient;
  logger: Logger;
  metrics: GatewayMetrics;
  flights: FlightGroup;
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

function toSource(answer: UpstreamResponse, meter?: UsageMeter): FlightSource {
  return {
    head: {
      status: answer.status,
      headers: forwardResponseHeaders(answer.headers, answer.decoded),
      eventStream: headerValue(answer.headers, 'content-type')?.startsWith('text/event-stream') === true,
    },
    body: answer.body as AsyncIterable<Buffer>,
    ...(meter === undefined ? {} : { onChunk: (chunk: Buffer) => meter.push(chunk) }),
  };
}

function meterFor(answer: UpstreamResponse): UsageMeter {
  const type = headerValue(answer.headers, 'content-type') ?? '';
  return new UsageMeter(type.startsWith('text/event-stream'), type.includes('json'));
}

function requestedModel(json: unknown): string | undefined {
  const model = (json as { model?: unknown } | null | undefined)?.model;
  return typeof model === 'string' ? model : undefined;
}

/** Usage meters of flights in progress, for followers' savings; entries go with their flight. */
const meters = new WeakMap<Flight, UsageMeter>();

/**
 * Forwards one request upstream and relays the answer, sharing one upstream call among identical
 * concurrent requests of the same tenant. Upstream error responses are answers and pass through
 * unchanged; transport failures surface as GatewayErrors for the error handler.
 */
export function proxyHandler(deps: ProxyDeps): RequestHandler {
  const { config, upstream, flights, logger, metrics } = deps;
  const injectApiKey = config.anthropicApiKey;

  return async (req, res) => {
    const ctx = contextOf(req);
    const { path, viaBasePath } = upstreamPath(req.originalUrl, config.basePath);
    const headers = forwardRequestHeaders(req.rawHeaders, { injectApiKey });

    let body: Buffer | IncomingMessage | null = null;
    let json: unknown;
    if (hasBody(req)) {
      if (isJson(req)) {
        const read = await readBody(req, config.maxBodyBytes);
        body = read.bytes;
        json = read.json;
      } else {
        // Uploads that are not JSON (multipart files) stream through without being held in memory.
        const length = req.headers['content-length'];
        if (length !== undefined) headers.push('content-length', length);
        body = req;
      }
    }

    if (isBatchPath(path)) {
      await proxyBatch(req, res, deps, { path, headers, body, viaBasePath });
      return;
    }

    let flight: Flight;
    let role: CoalesceRole;
    // A streamed (non-JSON) body is consumed once and can never be shared.
    const shared = config.coalesce && (body === null || Buffer.isBuffer(body)) && isCoalescable(req.method, path) && !optedOut(req);
    if (shared) {
      const key = fingerprint({ tenant: ctx.tenant, method: req.method, path, headers: req.headers, json });
      const existing = flights.find(key);
      if (existing !== undefined) {
        flight = existing;
        role = 'follower';
      } else {
        flight = flights.lead(key);
        role = 'leader';
      }
    } else {
      flight = flights.solo();
      role = 'bypass';
    }
    ctx.role = role;
    res.setHeader(ROLE_HEADER, role);
    const endpoint = endpointLabel(path);
    const model = metrics.models.value(requestedModel(json));
    // Subscribe before the flight can run: the leader must never miss its own head.
    const outcome = flight.subscribe(res);
    if (role === 'follower') {
      metrics.coalesced.inc({ endpoint, mode: ctx.mode });
    } else {
      const startedAt = performance.now();
      let meter: UsageMeter | undefined;
      void flight
        .run(async (signal) => {
          const answer = await upstream.send({ method: req.method, path, headers, body, signal });
          meter = meterFor(answer);
          meters.set(flight, meter);
          return toSource(answer, meter);
        })
        .then((result) => {
          recordUpstreamCall(metrics, { endpoint, mode: ctx.mode, model, startedAt, outcome: result, meter });
          if (result.error !== undefined && !isAbort(result.error) && result.head !== undefined) {
            const err = translateUpstreamError(result.error, 'body');
            logger.warn({ code: err.code, path: req.path, subscribers: result.subscribers }, err.message);
          }
        });
    }
    const served = await outcome;
    if (role === 'follower' && served.kind === 'served' && served.complete && res.statusCode < 300) {
      const meter = meters.get(flight);
      if (meter !== undefined) recordCoalescedDelivery(metrics, ctx.mode, model, meter);
    }
    if (served.kind === 'failed') {
      if (isAbort(served.error)) return;
      throw translateUpstreamError(served.error, 'headers');
    }
    const requestId = res.getHeader('request-id');
    if (typeof requestId === 'string') ctx.upstreamRequestId = requestId;
    if (served.kind === 'gone' && served.reason === 'slow') ctx.errorCode = 'SLOW_CLIENT_DROPPED';
  };
}

interface BatchCall {
  path: string;
  headers: string[];
  body: Buffer | IncomingMessage | null;
  viaBasePath: boolean;
}

/** Batch calls are never shared: their answers carry `results_url`, re-rooted at this requester's gateway address. */
async function proxyBatch(req: Request, res: ServerResponse, deps: ProxyDeps, call: BatchCall): Promise<void> {
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const ctx = contextOf(req);
  const startedAt = performance.now();
  const record = (status: string): void => {
    const labels = { endpoint: 'batches', mode: ctx.mode, model: 'unknown' };
    deps.metrics.apiCalls.inc({ ...labels, status });
    deps.metrics.apiDuration.observe(labels, (performance.now() - startedAt) / 1000);
  };
  let answer: UpstreamResponse;
  try {
    answer = await deps.upstream.send({ method: req.method, path: call.path, headers: call.headers, body: call.body, signal: abort.signal });
  } catch (err) {
    record(isAbort(err) ? 'aborted' : 'error');
    if (isAbort(err)) return;
    throw translateUpstreamError(err, 'headers');
  }
  record(String(answer.status));
  ctx.upstreamRequestId = answer.requestId;
  const rewritable = answer.status < 300 && headerValue(answer.headers, 'content-type')?.includes('json') === true;
  if (!rewritable) {
    const flight = deps.flights.solo();
    const outcome = flight.subscribe(res);
    await flight.run(() => Promise.resolve(toSource(answer)));
    await outcome;
    return;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_REWRITE_BYTES) throw new Error('batch response exceeds the rewrite limit');
      chunks.push(chunk);
    }
  } catch (err) {
    throw translateUpstreamError(err, 'body');
  }
  const bytes = Buffer.concat(chunks, total);
  const out = rewriteResultsUrls(bytes, deps.config.upstreamBaseUrl, gatewayBaseUrl(req, deps.config, call.viaBasePath)) ?? bytes;
  for (const [name, value] of forwardResponseHeaders(answer.headers, true)) res.setHeader(name, value);
  res.setHeader('content-length', out.length);
  res.writeHead(answer.status);
  res.end(out);
}
