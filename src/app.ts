import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import type { GatewayMetrics } from './observability/metrics.js';
import type { FlightGroup } from './pipeline/coalesce/flight-group.js';
import type { Dispatch } from './pipeline/call/index.js';
import type { RequestTracing } from './observability/tracing.js';
import type { ResponseCache } from './pipeline/cache/response-cache.js';
import type { SharedResponseCache } from './coordination/shared-cache.js';
import { GatewayError } from './core/errors.js';
import { authenticate, type DatabaseKeys, type TenantHasher } from './http/auth.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequests } from './http/observe.js';
import { proxyHandler } from './http/proxy.js';
import { CacheBreaks } from './observability/cache-breaks.js';
import { contextOf } from './http/context.js';
import { keyLimitsStage } from './http/governance.js';
import type { Admission } from './governance/admission.js';
import type { Principal } from './governance/model.js';
import { checkTarget } from './http/target.js';
import { compose, pathOf, type Stage } from './http/stage.js';
import { systemRoutes, SYSTEM_PATHS, type Readiness } from './http/system-routes.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  readiness: Readiness;
  flights: FlightGroup;
  /** The upstream call chain. */
  upstream: Dispatch;
  tracing: RequestTracing;
  cache: ResponseCache | undefined;
  linger: ResponseCache | undefined;
  /** Requests in progress now (the capacity stage compares it with MAX_CONCURRENT_REQUESTS). */
  activeRequests: () => number;
  /** The rate-limit stage (http/rate-limit.ts) when RATE_LIMIT_RPM turns limiting on. */
  rateLimit?: Stage | undefined;
  sharedCache?: SharedResponseCache | undefined;
  /** Turns credentials into tenant ids (keyed with TENANT_HASH_KEY). */
  tenants: TenantHasher;
  /** Keys issued by the gateway (ADMIN_API_KEY set), held in memory. */
  databaseKeys?: DatabaseKeys | undefined;
  /** Budgets, per-key limits and the ledger (issue 26), when a governance store is wired. */
  admission?: Admission | undefined;
  /**
   * Names the principal of a request after auth, when auth named none (tests: an in-memory principal
   * without a database key).
   */
  principalOf?: ((req: IncomingMessage) => Principal | undefined) | undefined;
}

/**
 * The only place the order of stages is written:
 *   observe → target check → system routes | capacity → auth → rate limit → key limits → proxy;  errors → Anthropic-shaped answer.
 */
export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, logger, metrics } = deps;
  const serveSystem = systemRoutes(deps.readiness, metrics);
  const system: Stage = (req, res, next) => {
    const path = pathOf(req);
    if (SYSTEM_PATHS.has(path)) serveSystem(req, res, path);
    else next();
  };
  // Every in-flight structure (flights, buffers, sockets) grows with concurrent requests: cap them.
  const capacity: Stage = (_req, _res, next) => {
    if (deps.activeRequests() > config.maxConcurrentRequests) {
      // The API's own overload answer: the SDKs raise OverloadedError and clients back off or fall back.
      next(new GatewayError('AT_CAPACITY', `Overloaded: the gateway is at capacity (${config.maxConcurrentRequests} concurrent requests). Retry shortly.`, { headers: { 'retry-after': '1' } }));
    } else next();
  };
  const { principalOf } = deps;
  const stages: Stage[] = [
    observeRequests(logger, metrics, deps.tracing),
    checkTarget(),
    system,
    capacity,
    authenticate({ gatewayApiKeys: config.gatewayApiKeys, injectsCredentials: config.injectsCredentials, injectionIdentity: config.upstreams.map((u) => `${u.name}:${u.apiKey ?? u.bearerToken ?? u.kind}`), tenants: deps.tenants, databaseKeys: deps.databaseKeys }),
    ...(principalOf === undefined ? [] : [identify(principalOf)]),
    ...(deps.rateLimit === undefined ? [] : [deps.rateLimit]),
    ...(deps.admission === undefined ? [] : [keyLimitsStage(deps.admission.keyLimits)]),
    proxyHandler({ config, metrics, flights: deps.flights, upstream: deps.upstream, cache: deps.cache, linger: deps.linger, sharedCache: deps.sharedCache, cacheAffinity: config.cacheAffinity && config.upstreams.length > 1, cacheBreaks: new CacheBreaks(metrics.promptCacheBreaks, metrics.modes, logger), governance: deps.admission?.calls }),
  ];
  return compose(stages, errorHandler(logger));
}

/** Sets the request's principal from `principalOf` when auth set none (see AppDeps.principalOf). */
function identify(principalOf: (req: IncomingMessage) => Principal | undefined): Stage {
  return (req, _res, next) => {
    const ctx = contextOf(req);
    ctx.principal ??= principalOf(req);
    next();
  };
}
