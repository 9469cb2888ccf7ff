import type { IncomingMessage } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Dispatch } from '../pipeline/call/index.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import type { ResponseCache } from '../pipeline/cache/response-cache.js';
import { startFingerprint } from '../pipeline/fingerprint.js';
import type { SharedResponseCache } from '../coordination/shared-cache.js';
import type { CallGovernance } from '../governance/govern.js';
import { readBody } from './body.js';
import { contextOf } from './context.js';
import type { AnswerSource, Exchange } from './exchange.js';
import { cacheSource, lingeringSource } from './finished-answers.js';
import { flightSource, type AnswerKeeper } from './flight-source.js';
import { governedRequest } from './governance.js';
import { publicOrigin } from './public-origin.js';
import { classifyRequest } from './request-class.js';
import type { Stage } from './stage.js';

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
  const { config, flights, metrics, cache, linger, sharedCache } = deps;
  const originOf = publicOrigin({ publicUrl: config.publicUrl, allowedHosts: config.allowedHosts, listenHost: config.host });
  const classifySettings = { basePath: config.basePath, coalesce: config.coalesce, cache: cache !== undefined };
  const finished: readonly AnswerSource[] = [
    ...(cache === undefined ? [] : [cacheSource(flights, metrics, cache, sharedCache, deps.governance)]),
    ...(linger === undefined ? [] : [lingeringSource(flights, metrics, linger, deps.governance)]),
  ];
  const keeper: AnswerKeeper = {
    wants: (request) => request.caching || (request.coalescing && linger !== undefined),
    keep: ({ request, key }, answer) => {
      if (request.caching && cache !== undefined) {
        cache.set(key, answer);
        sharedCache?.set(key, answer);
      }
      if (request.coalescing) linger?.set(key, answer);
    },
  };
  const fromFlight = flightSource({
    flights,
    metrics,
    upstream: deps.upstream,
    dropCredentials: config.injectsCredentials,
    // Where clients reach the gateway: a Host header only when allowed (see http/public-origin.ts).
    gatewayBaseUrl: (req: IncomingMessage, viaBasePath: boolean) => originOf(req) + (viaBasePath ? config.basePath : ''),
    keeper,
    governance: deps.governance,
  });

  return async (req, res) => {
    const ctx = contextOf(req);
    const request = classifyRequest(req, ctx, classifySettings);
    // The fingerprint is hashed as the body arrives; a request that can share nothing is not hashed.
    const shares = request.coalescing || request.caching;
    const fingerprint = shares && ctx.tenant !== undefined ? startFingerprint({ tenant: ctx.tenant, method: request.method, path: request.path, headers: req.headers }) : undefined;
    let body: Buffer | IncomingMessage | null = null;
    let model: string | undefined;
    if (request.jsonBody) {
      const read = await readBody(req, config.maxBodyBytes, fingerprint);
      body = read.bytes;
      model = read.model;
    } else if (request.withBody) {
      // Uploads that are not JSON (multipart files) stream through without being held in memory.
      body = req;
    }
    const exchange: Exchange = { req, res, ctx, request, body, model, key: fingerprint === undefined ? '' : fingerprint.key() };
    exchange.governed = governedRequest(deps.governance, exchange);
    // Answers that reserve nothing carry the key's last remaining budget; a leader's reservation sets fresh values.
    if (exchange.governed !== undefined) deps.governance?.headers(exchange.governed);
    for (const source of finished) {
      const answered = source(exchange);
      if (answered === true || (answered !== false && (await answered))) return;
    }
    await fromFlight(exchange);
  };
}
