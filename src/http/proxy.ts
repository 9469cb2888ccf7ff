import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.js';
import { sessionOf, type CacheBreak, type CacheBreaks } from '../observability/cache-breaks.js';
import { affinityKey, type AffinityKey } from '../pipeline/affinity/cache-affinity.js';
import type { Dispatch } from '../pipeline/call/index.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import type { ResponseCache } from '../pipeline/cache/response-cache.js';
import { fingerprintOf, type FingerprintHash } from '../pipeline/fingerprint.js';
import type { SharedResponseCache } from '../coordination/shared-cache.js';
import type { CallGovernance } from '../governance/govern.js';
import { GatewayError } from '../core/errors.js';
import { modelAllowed } from '../governance/limits.js';
import { readBodyThen, type BodyTaker } from './body.js';
import type { CachePrefix } from '../core/json-scan.js';
import { contextOf, type RequestContext } from './context.js';
import type { AnswerSource, Exchange } from './exchange.js';
import { cacheSource, lingeringSource } from './finished-answers.js';
import { flightSource, type AnswerKeeper } from './flight-source.js';
import { governedRequest } from './governance.js';
import { publicOrigin } from './public-origin.js';
import { classifyRequest, type RequestClass } from './request-class.js';
import type { Next, Stage } from './stage.js';

export { upstreamPath } from './request-class.js';

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
  /** Budgets, per-key accounting and the spend ledger (issue 26); undefined: nothing is governed. */
  governance?: CallGovernance | undefined;
  /** Prompt-cache break detection for requests that name a session (observability/cache-breaks.ts). */
  cacheBreaks?: CacheBreaks | undefined;
  /** Take each JSON body's cached-head identity for cache-affinity routing (CACHE_AFFINITY, more than one upstream). */
  cacheAffinity?: boolean;
}

/**
 * The last edge stage, in three steps:
 * 1. classify the request (http/request-class.ts: pure; what it may take and give);
 * 2. read its body (a JSON body whole, scanned and fingerprinted as it arrives);
 * 3. ask the answer sources in order, the first that answers wins: the response cache, a
 *    lingering answer (http/finished-answers.ts), then the flight (http/flight-source.ts: join
 *    the identical call in flight, or lead a new one), which always answers.
 */
export function proxyHandler(deps: ProxyDeps): Stage {
  const { config, flights, metrics, cache, linger, sharedCache, cacheBreaks } = deps;
  const tapsCachePrefix = deps.cacheAffinity === true;
  const originOf = publicOrigin({ publicUrl: config.publicUrl, allowedHosts: config.allowedHosts, listenHost: config.host });
  const classifySettings = { basePath: config.basePath, coalesce: config.coalesce, cache: cache !== undefined };
  const finished: readonly AnswerSource[] = [
    ...(cache === undefined ? [] : [cacheSource(flights, metrics, cache, sharedCache, deps.governance)]),
    ...(linger === undefined ? [] : [lingeringSource(flights, metrics, linger, deps.governance)]),
  ];
  const keeper: AnswerKeeper = {
    wants: (request) => request.caching || (request.coalescing && linger !== undefined),
    keep: ({ request, key }, answer) => {
      // An answer the cache kept is not kept again as a lingering one: the cache is asked first and
      // keeps it longer, and a second entry was one more for every collection to copy (issue 30).
      let cached = false;
      if (request.caching && cache !== undefined) {
        cached = cache.set(key, answer);
        sharedCache?.set(key, answer);
      }
      if (request.coalescing && !cached) linger?.set(key, answer);
    },
  };
  const fromFlight = flightSource(
    {
      flights,
      metrics,
      upstream: deps.upstream,
      dropCredentials: config.injectsCredentials,
      // Where clients reach the gateway: a Host header only when allowed (see http/public-origin.ts).
      gatewayBaseUrl: (req: IncomingMessage, viaBasePath: boolean) => originOf(req) + (viaBasePath ? config.basePath : ''),
      keeper,
      governance: deps.governance,
    },
    // A client's subscription ended: its error answer, or the usage its prompt-cache break is told.
    (exchange, error, usage) => {
      if (error !== undefined) exchange.next(error);
      else if (exchange.cacheBreak !== undefined) cacheBreaks?.report(exchange.cacheBreak, usage);
    },
  );

  /** The request once its body is read: the answer sources in order, each told where to go on (no async frame). */
  const answer: Answer = (req, res, next, ctx, request, fingerprint, body, model, cachePrefix) => {
    let cacheBreak: CacheBreak | undefined;
    let affinity: AffinityKey | undefined;
    if (request.jsonBody) {
      // The cached head's digest comes out of the body's one scan (core/json-scan.ts): no second parse.
      affinity = affinityKey(ctx.tenant, model, cachePrefix);
      // Only a Messages request that names a session pays for the prompt-block scan.
      if (cacheBreaks !== undefined && request.endpoint === 'messages' && ctx.tenant !== undefined) {
        const session = sessionOf(req.headers);
        if (session !== undefined) cacheBreak = cacheBreaks.inspect(ctx.tenant, session, ctx.mode, model, body as Buffer);
      }
    }
    // A database key may be limited to some models: refused before anything is shared, counted or sent.
    if (ctx.principal !== undefined && !modelAllowed(ctx.principal.limits, model)) {
      throw new GatewayError('MODEL_NOT_ALLOWED', 'This gateway key may not call the requested model (its allowed models are set by the gateway administrator)');
    }
    // Every field in the literal (`governed` too, set just below): one shape, no property added later.
    const exchange: Exchange = { req, res, ctx, request, body, model, key: fingerprint === undefined ? '' : fingerprint.key(), affinity, governed: undefined, cacheBreak, next };
    exchange.governed = governedRequest(deps.governance, exchange);
    // Answers that reserve nothing carry the key's last remaining budget; a leader's reservation sets fresh values.
    if (exchange.governed !== undefined) deps.governance?.headers(exchange.governed);
    ask(exchange, 0);
  };

  /** Asks the finished sources from `from` on, then the flight; the stage's `next` gets any error. */
  const ask = (exchange: Exchange, from: number): void => {
    const { cacheBreak, next } = exchange;
    for (let i = from; i < finished.length; i++) {
      const answered = (finished[i] as AnswerSource)(exchange);
      if (answered === false) continue;
      if (answered === true) {
        // A reused answer: no call, so no usage of its own to tell what was re-written.
        if (cacheBreak !== undefined) cacheBreaks?.report(cacheBreak, undefined);
        return;
      }
      answered.then((yes) => {
        try {
          if (!yes) ask(exchange, i + 1);
          else if (cacheBreak !== undefined) cacheBreaks?.report(cacheBreak, undefined);
        } catch (err) {
          next(err);
        }
      }, next);
      return;
    }
    fromFlight(exchange);
  };

  // No async frame: a body already read (or none) goes on at once; a JSON body's read calls back once.
  return (req, res, next) => {
    const ctx = contextOf(req);
    const request = classifyRequest(req, ctx, classifySettings);
    // The fingerprint is hashed as the body arrives; a request that can share nothing is not hashed.
    const shares = request.coalescing || request.caching;
    const fingerprint = shares && ctx.tenant !== undefined ? fingerprintOf(ctx.tenant, request.method, request.path, req.headers, req.rawHeaders) : undefined;
    if (!request.jsonBody) {
      // Uploads that are not JSON (multipart files) stream through without being held in memory.
      answer(req, res, next, ctx, request, fingerprint, request.withBody ? req : null, undefined, undefined);
      return;
    }
    readBodyThen(req, config.maxBodyBytes, fingerprint, tapsCachePrefix, new AwaitingBody(answer, req, res, next, ctx, request, fingerprint));
  };
}

type Answer = (req: IncomingMessage, res: ServerResponse, next: Next, ctx: RequestContext, request: RequestClass, fingerprint: FingerprintHash | undefined, body: Buffer | IncomingMessage | null, model: string | undefined, cachePrefix: CachePrefix | undefined) => void;

/** A request whose JSON body is being read: what the stage goes on with once it is (one object, no closure). */
class AwaitingBody implements BodyTaker {
  constructor(
    private readonly answer: Answer,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly next: Next,
    private readonly ctx: RequestContext,
    private readonly request: RequestClass,
    private readonly fingerprint: FingerprintHash | undefined,
  ) {}

  bodyRead(error: GatewayError | undefined, bytes: Buffer | undefined, model: string | undefined, cachePrefix: CachePrefix | undefined): void {
    if (error !== undefined) {
      this.next(error);
      return;
    }
    try {
      this.answer(this.req, this.res, this.next, this.ctx, this.request, this.fingerprint, bytes as Buffer, model, cachePrefix);
    } catch (err) {
      this.next(err);
    }
  }
}
