import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.js';
import { endpointLabel } from '../observability/labels.js';
import { sessionOf, type CacheBreak, type CacheBreaks } from '../observability/cache-breaks.js';
import { linkTo } from '../observability/tracing.js';
import { recordDelivery, recordReuse } from '../pipeline/accounting.js';
import type { Dispatch, UpstreamCall } from '../pipeline/call/index.js';
import type { CallOutcome, Flight, FlightHead } from '../pipeline/coalesce/flight.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import { cacheOptedOut, isCoalescable, optedOut, ROLE_HEADER, type CoalesceRole } from '../pipeline/coalesce/policy.js';
import type { CachedAnswer, ResponseCache } from '../pipeline/cache/response-cache.js';
import { startFingerprint } from '../pipeline/fingerprint.js';
import { isWholeAnswer } from '../pipeline/reuse.js';
import type { SharedResponseCache } from '../coordination/shared-cache.js';
import { forwardRequestHeaders } from '../upstream/headers.js';
import { pairValue } from '../upstream/header-list.js';
import { isAbort, translateUpstreamError } from '../upstream/client.js';
import { isBatchPath, rewriteResultsUrls } from '../upstream/batch-results-url.js';
import { hasBody, isJson, readBody } from './body.js';
import { contextOf, type RequestContext } from './context.js';
import { publicOrigin } from './public-origin.js';
import type { Stage } from './stage.js';

/** What the proxy stage reads of the configuration (the server layer passes its Config, which has these fields). */
export interface ProxySettings {
  readonly injectsCredentials: boolean;
  readonly publicUrl: string | undefined;
  readonly allowedHosts: ReadonlySet<string> | undefined;
  readonly host: string;
  readonly basePath: string;
  readonly coalesce: boolean;
  readonly maxBodyBytes: number;
}

export interface ProxyDeps {
  config: ProxySettings;
  metrics: GatewayMetrics;
  flights: FlightGroup;
  /** The upstream call chain (pipeline/call). */
  upstream: Dispatch;
  /** Exact-match response cache (CACHE=on). */
  cache: ResponseCache | undefined;
  /** The cache's tier on Redis (REDIS_URL with CACHE=on): answers any instance cached. */
  sharedCache?: SharedResponseCache | undefined;
  /** Finished whole answers (pipeline/reuse.ts) kept COALESCE_LINGER_MS for identical arrivals. */
  linger: ResponseCache | undefined;
  /** Prompt-cache break detection for requests that name a session (observability/cache-breaks.ts). */
  cacheBreaks?: CacheBreaks | undefined;
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
 * The last edge stage: classifies the request, answers it from a finished answer when one may be
 * reused (cache, lingering), and otherwise joins the identical call in flight or leads a new one.
 * Everything about the upstream call itself happens in the flight (pipeline/): this stage only
 * subscribes the client and turns a failure before any byte into the error answer.
 */
export function proxyHandler(deps: ProxyDeps): Stage {
  const { config, flights, metrics, cache, linger, sharedCache, cacheBreaks } = deps;
  // In injection mode the client's credential headers carry the gateway key: they never travel; each upstream's adapter adds its own.
  const dropCredentials = config.injectsCredentials;
  const originOf = publicOrigin({ publicUrl: config.publicUrl, allowedHosts: config.allowedHosts, listenHost: config.host });
  /** Where clients reach the gateway: a Host header only when allowed (see http/public-origin.ts). */
  const gatewayBaseUrl = (req: IncomingMessage, viaBasePath: boolean): string => originOf(req) + (viaBasePath ? config.basePath : '');

  return async (req, res) => {
    const ctx = contextOf(req);
    const method = req.method ?? 'GET';
    const { path, viaBasePath } = upstreamPath(req.url ?? '/', config.basePath);

    const endpoint = endpointLabel(path);
    const withBody = hasBody(req);
    const jsonBody = withBody && isJson(req);
    // A streamed (non-JSON) body is consumed once: its call can never be shared or cached. A request
    // without an upstream credential (no tenant) shares nothing: not a flight, a lingering or a cached answer.
    const eligible = ctx.tenant !== undefined && (!withBody || jsonBody) && isCoalescable(method, path);
    const coalescing = eligible && config.coalesce && !optedOut(req);
    const caching = eligible && cache !== undefined && !cacheOptedOut(req);
    // The fingerprint is hashed as the body arrives; a request that can share nothing is not hashed.
    const keyHash = (coalescing || caching) && ctx.tenant !== undefined ? startFingerprint({ tenant: ctx.tenant, method, path, headers: req.headers }) : undefined;

    let body: Buffer | IncomingMessage | null = null;
    // The raw model string: accounting and the breaker bound it themselves.
    let model: string | undefined;
    let cacheBreak: CacheBreak | undefined;
    if (withBody) {
      if (jsonBody) {
        const read = await readBody(req, config.maxBodyBytes, keyHash);
        body = read.bytes;
        model = read.model;
        // Only a Messages request that names a session pays for the prompt-block scan.
        if (cacheBreaks !== undefined && endpoint === 'messages' && ctx.tenant !== undefined) {
          const session = sessionOf(req.headers);
          if (session !== undefined) cacheBreak = cacheBreaks.inspect(ctx.tenant, session, ctx.mode, model, read.bytes);
        }
      } else {
        // Uploads that are not JSON (multipart files) stream through without being held in memory.
        body = req;
      }
    }
    const key = keyHash === undefined ? '' : keyHash.key();

    if (caching) {
      const hit = cache.get(key) ?? (sharedCache === undefined ? undefined : await sharedCache.get(key));
      metrics[hit === undefined ? 'cacheMisses' : 'cacheHits'].inc({ endpoint, mode: metrics.modes.known(ctx.mode) });
      if (hit !== undefined) {
        if (cacheBreak !== undefined) cacheBreaks?.report(cacheBreak, undefined);
        await serveFinished(res, ctx, flights, hit, 'cache');
        recordReuse(metrics, ctx.mode, model, hit, 'cache');
        return;
      }
    }
    if (coalescing && linger !== undefined) {
      const recent = linger.get(key);
      if (recent !== undefined) {
        if (cacheBreak !== undefined) cacheBreaks?.report(cacheBreak, undefined);
        await serveFinished(res, ctx, flights, recent, 'follower');
        metrics.coalesced.inc({ endpoint, mode: metrics.modes.known(ctx.mode) });
        recordReuse(metrics, ctx.mode, model, recent, 'coalesced');
        return;
      }
    }

    const existing = coalescing ? flights.find(key) : undefined;
    const role: CoalesceRole = existing !== undefined ? 'follower' : coalescing ? 'leader' : 'bypass';
    const flight = existing ?? (coalescing ? flights.lead(key) : flights.solo());
    ctx.role = role;
    // Subscribe before the flight can run: the leader must never miss its own head.
    const served = flight.subscribe(res, () => {
      // A call relayed from another instance's upstream call makes its leader a follower too.
      const actual = role === 'leader' && flight.facts.origin === 'remote' ? 'follower' : role;
      ctx.role = actual;
      if (actual !== 'follower') observeOverhead(metrics, ctx, flight);
      return [ROLE_HEADER, actual];
    });
    if (role === 'follower') metrics.coalesced.inc({ endpoint, mode: metrics.modes.known(ctx.mode) });
    else {
      // Batch answers carry an absolute results_url: re-root it at the address this client used.
      const rewriteJson = isBatchPath(path)
        ? (bytes: Buffer, upstreamBaseUrl: string) => rewriteResultsUrls(bytes, upstreamBaseUrl, gatewayBaseUrl(req, viaBasePath))
        : undefined;
      const headers = forwardRequestHeaders(req.rawHeaders, { dropCredentials });
      const length = req.headers['content-length'];
      if (body === req && length !== undefined) headers.push('content-length', length);
      const call: UpstreamCall = {
        method,
        path,
        headers,
        body,
        endpoint,
        mode: ctx.mode,
        model,
        sharedKey: coalescing ? key : undefined,
        rewriteJson,
        parentSpan: ctx.span,
      };
      const keep = caching || (coalescing && linger !== undefined);
      const upstream = deps.upstream;
      const running = flight.run((scope) => upstream(call, scope));
      if (keep) {
        void running.then((outcome) => {
          // A throw here must never become an unhandled rejection: the answer is simply not kept.
          try {
            keepAnswer(flight, outcome, (answer) => {
              if (caching) {
                cache.set(key, answer);
                sharedCache?.set(key, answer);
              }
              if (coalescing) linger?.set(key, answer);
            });
          } catch {
            // not kept
          }
        });
      }
    }

    const outcome = await served;
    if (cacheBreak !== undefined) {
      // This client has the whole answer, so the meter has seen every byte: finishing it here (as
      // keepAnswer does; it is idempotent) reads a plain JSON answer's usage before the flight's hooks ran.
      const meter = outcome.kind === 'served' && outcome.complete ? flight.facts.meter : undefined;
      cacheBreaks?.report(cacheBreak, meter?.finish() === true ? meter.usage : undefined);
    }
    if (role === 'follower' || ctx.role === 'follower') {
      const sharedSpan = flight.facts.span;
      if (sharedSpan !== undefined) ctx.span?.addLink(linkTo(sharedSpan));
    }
    if (role === 'follower' && outcome.kind === 'served' && outcome.complete && res.statusCode < 300 && flight.facts.meter !== undefined) {
      recordDelivery(metrics, ctx.mode, model, flight.facts.meter, 'coalesced');
    }
    if (outcome.kind === 'failed') {
      if (isAbort(outcome.error)) return;
      throw translateUpstreamError(outcome.error, 'headers');
    }
    noteRequestId(flight.answerHead, ctx);
    if (outcome.kind === 'gone' && (outcome.reason === 'slow' || outcome.reason === 'stalled')) {
      ctx.errorCode = outcome.reason === 'slow' ? 'SLOW_CLIENT_DROPPED' : 'STALLED_CLIENT_DROPPED';
    }
  };
}

/** The time the gateway itself added for the client whose request made the call: received → sent, plus upstream head → client head. */
function observeOverhead(metrics: GatewayMetrics, ctx: RequestContext, flight: Flight): void {
  const { sentAt, headersAt, origin } = flight.facts;
  if (origin !== 'upstream' || sentAt === undefined || headersAt === undefined) return;
  metrics.gatewayOverhead.observe({}, (sentAt - ctx.receivedAt + (performance.now() - headersAt)) / 1000);
}

/** Offers a whole answer (pipeline/reuse.ts: the one verdict) for reuse (cache, lingering), if the flight kept all of it. */
function keepAnswer(flight: Flight, outcome: CallOutcome, keep: (answer: CachedAnswer) => void): void {
  if (!isWholeAnswer(outcome, flight.facts)) return;
  const replay = flight.finishedReplay();
  if (replay === undefined) return;
  const meter = flight.facts.meter;
  meter?.finish();
  keep({
    head: replay.head,
    body: replay.body,
    bytes: replay.body.reduce((n, c) => n + c.length, 0),
    usage: meter?.hasUsage === true ? { ...meter.usage } : undefined,
    model: meter?.model,
  });
}

/** Answers from a finished upstream answer (cache hit or lingering result) through the same pump as live flights. */
async function serveFinished(res: ServerResponse, ctx: RequestContext, flights: FlightGroup, answer: CachedAnswer, role: CoalesceRole): Promise<void> {
  ctx.role = role;
  const flight = flights.solo();
  const outcome = flight.subscribe(res, () => [ROLE_HEADER, role]);
  await flight.run(() => Promise.resolve({ head: answer.head, body: answer.body }));
  await outcome;
  noteRequestId(answer.head, ctx);
}

function noteRequestId(head: FlightHead | undefined, ctx: RequestContext): void {
  const requestId = head === undefined ? undefined : pairValue(head.headers, 'request-id');
  if (requestId !== undefined) ctx.upstreamRequestId = requestId;
}
