import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { endpointLabel } from '../observability/labels.js';
import { recordCoalescedDelivery } from '../pipeline/accounting.js';
import { meterOf, runUpstreamCall, upstreamSpanOf, type UpstreamCallDeps } from '../pipeline/upstream-call.js';
import { linkTo } from '../observability/tracing.js';
import { forwardRequestHeaders } from '../upstream/headers.js';
import { isAbort, translateUpstreamError } from '../upstream/client.js';
import { isBatchPath, rewriteResultsUrls } from '../upstream/batch-results-url.js';
import { fingerprint } from '../pipeline/fingerprint.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import type { Flight } from '../pipeline/coalesce/flight.js';
import { cacheOptedOut, isCoalescable, optedOut, ROLE_HEADER, type CoalesceRole } from '../pipeline/coalesce/policy.js';
import type { CachedAnswer, ResponseCache } from '../pipeline/cache/response-cache.js';
import type { SharedResponseCache } from '../coordination/shared-cache.js';
import type { RequestContext } from './context.js';
import { hasBody, isJson, readBody } from './body.js';
import { contextOf } from './context.js';
import { publicOrigin } from './public-origin.js';
import type { Stage } from './stage.js';

export interface ProxyDeps {
  config: Config;
  metrics: GatewayMetrics;
  flights: FlightGroup;
  calls: UpstreamCallDeps;
  /** Exact-match response cache (CACHE=on). */
  cache: ResponseCache | undefined;
  /** The cache's tier on Redis (REDIS_URL with CACHE=on): answers any instance cached. */
  sharedCache?: SharedResponseCache | undefined;
  /** Finished plain answers kept COALESCE_LINGER_MS for near-simultaneous arrivals. */
  linger: ResponseCache | undefined;
}

/** The path to forward: the client's path and query, without the gateway's own BASE_PATH. */
export function upstreamPath(url: string, basePath: string): { path: string; viaBasePath: boolean } {
  if (basePath !== '' && url.startsWith(basePath) && (url.length === basePath.length || '/?'.includes(url[basePath.length] as string))) {
    const rest = url.slice(basePath.length);
    return { path: rest === '' || rest.startsWith('?') ? '/' + rest : rest, viaBasePath: true };
  }
  return { path: url, viaBasePath: false };
}

/**
 * Forwards one request upstream and relays the answer, sharing one upstream call among identical
 * concurrent requests of the same tenant. Upstream error responses are answers and pass through
 * unchanged; transport failures surface as GatewayErrors for the error handler.
 */
export function proxyHandler(deps: ProxyDeps): Stage {
  const { config, flights, metrics, cache, linger, sharedCache } = deps;
  const injectApiKey = config.anthropicApiKey;
  const originOf = publicOrigin({ publicUrl: config.publicUrl, allowedHosts: config.allowedHosts, listenHost: config.host });
  /** Where clients reach the gateway: a Host header only when allowed (see http/public-origin.ts). */
  const gatewayBaseUrl = (req: IncomingMessage, viaBasePath: boolean): string => originOf(req) + (viaBasePath ? config.basePath : '');

  return async (req, res) => {
    const ctx = contextOf(req);
    const method = req.method ?? 'GET';
    const { path, viaBasePath } = upstreamPath(req.url ?? '/', config.basePath);

    let body: Buffer | IncomingMessage | null = null;
    let bodyDigest = '';
    let requestedModel: string | undefined;
    if (hasBody(req)) {
      if (isJson(req)) {
        const read = await readBody(req, config.maxBodyBytes);
        body = read.bytes;
        bodyDigest = read.digest;
        requestedModel = read.model;
      } else {
        // Uploads that are not JSON (multipart files) stream through without being held in memory.
        body = req;
      }
    }

    const endpoint = endpointLabel(path);
    const model = metrics.models.known(requestedModel);
    // A streamed (non-JSON) body is consumed once: its call can never be shared or cached. A request
    // without an upstream credential (no tenant) shares nothing: not a flight, a lingering or a cached answer.
    const eligible = ctx.tenant !== undefined && (body === null || Buffer.isBuffer(body)) && isCoalescable(method, path);
    const coalescing = eligible && config.coalesce && !optedOut(req);
    const caching = eligible && cache !== undefined && !cacheOptedOut(req);
    const key = (coalescing || caching) && ctx.tenant !== undefined ? fingerprint({ tenant: ctx.tenant, method, path, headers: req.headers, bodyDigest }) : '';

    if (caching) {
      const hit = cache.get(key) ?? (sharedCache === undefined ? undefined : await sharedCache.get(key));
      metrics[hit === undefined ? 'cacheMisses' : 'cacheHits'].inc({ endpoint, mode: ctx.mode });
      if (hit !== undefined) {
        await serveFinished(res, ctx, flights, hit, 'cache');
        if (hit.usage !== undefined) metrics.recordSaved(ctx.mode, model, hit.usage, 'cache');
        return;
      }
    }
    if (coalescing && linger !== undefined) {
      const recent = linger.get(key);
      if (recent !== undefined) {
        await serveFinished(res, ctx, flights, recent, 'follower');
        metrics.coalesced.inc({ endpoint, mode: ctx.mode });
        if (recent.usage !== undefined) metrics.recordSaved(ctx.mode, model, recent.usage, 'coalesced');
        return;
      }
    }

    let flight: Flight;
    let role: CoalesceRole;
    const existing = coalescing ? flights.find(key) : undefined;
    if (existing !== undefined) {
      flight = existing;
      role = 'follower';
    } else if (coalescing) {
      flight = flights.lead(key);
      role = 'leader';
    } else {
      flight = flights.solo();
      role = 'bypass';
    }
    ctx.role = role;
    res.setHeader(ROLE_HEADER, role);
    // Subscribe before the flight can run: the leader must never miss its own head.
    const outcome = flight.subscribe(res);
    if (role === 'follower') {
      metrics.coalesced.inc({ endpoint, mode: ctx.mode });
      const sharedSpan = upstreamSpanOf(flight);
      if (sharedSpan !== undefined) ctx.span?.addLink(linkTo(sharedSpan));
    } else {
      // Batch answers carry an absolute results_url: re-root it at the address this client used.
      const rewriteJson = isBatchPath(path)
        ? (bytes: Buffer) => rewriteResultsUrls(bytes, config.upstreamBaseUrl, gatewayBaseUrl(req, viaBasePath))
        : undefined;
      const keep = caching || (coalescing && linger !== undefined);
      const onComplete = keep
        ? (answer: CachedAnswer) => {
            if (caching) {
              cache.set(key, answer);
              sharedCache?.set(key, answer);
            }
            if (coalescing && !answer.head.eventStream) linger?.set(key, answer);
          }
        : undefined;
      const sharedKey = coalescing ? key : undefined;
      const headers = forwardRequestHeaders(req.rawHeaders, { injectApiKey });
      const length = req.headers['content-length'];
      if (body === req && length !== undefined) headers.push('content-length', length);
      void runUpstreamCall(deps.calls, flight, { method, path, headers, body, endpoint, mode: ctx.mode, model: metrics.breakerModels.value(requestedModel), requestedModel, rewriteJson, parentSpan: ctx.span, onComplete, sharedKey });
    }
    const served = await outcome;
    if (role === 'follower' && served.kind === 'served' && served.complete && res.statusCode < 300) {
      const meter = meterOf(flight);
      if (meter !== undefined) recordCoalescedDelivery(metrics, ctx.mode, requestedModel, meter);
    }
    if (served.kind === 'failed') {
      if (isAbort(served.error)) return;
      throw translateUpstreamError(served.error, 'headers');
    }
    noteRequestId(res, ctx);
    if (served.kind === 'gone' && served.reason === 'slow') ctx.errorCode = 'SLOW_CLIENT_DROPPED';
  };
}

/** Answers from a finished upstream answer (cache hit or lingering result) through the same pump as live flights. */
async function serveFinished(res: ServerResponse, ctx: RequestContext, flights: FlightGroup, answer: CachedAnswer, role: CoalesceRole): Promise<void> {
  ctx.role = role;
  res.setHeader(ROLE_HEADER, role);
  const flight = flights.solo();
  const outcome = flight.subscribe(res);
  await flight.run(() => Promise.resolve({ head: answer.head, body: answer.body }));
  await outcome;
  noteRequestId(res, ctx);
}

function noteRequestId(res: ServerResponse, ctx: RequestContext): void {
  const requestId = res.getHeader('request-id');
  if (typeof requestId === 'string') ctx.upstreamRequestId = requestId;
}
