import express, { type Express } from 'express';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import type { GatewayMetrics } from './observability/metrics.js';
import type { FlightGroup } from './pipeline/coalesce/flight-group.js';
import type { UpstreamCallDeps } from './pipeline/upstream-call.js';
import type { RequestTracing } from './observability/tracing.js';
import type { ResponseCache } from './pipeline/cache/response-cache.js';
import { authenticate } from './http/auth.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequests } from './http/observe.js';
import { proxyHandler } from './http/proxy.js';
import { rateLimiter } from './http/rate-limit.js';
import { systemRoutes, type Readiness } from './http/system-routes.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  readiness: Readiness;
  flights: FlightGroup;
  calls: UpstreamCallDeps;
  tracing: RequestTracing;
  cache: ResponseCache | undefined;
  linger: ResponseCache | undefined;
}

/** The only place the order of stages is written. */
export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  app.use(observeRequests(logger, metrics, deps.tracing));
  app.use(systemRoutes(deps.readiness, metrics));
  app.use(authenticate({ gatewayApiKeys: config.gatewayApiKeys, injectsUpstreamKey: config.anthropicApiKey !== undefined }));
  const limiter = rateLimiter({ rpm: config.rateLimitRpm, metrics });
  if (limiter !== undefined) app.use(limiter);
  app.use(proxyHandler({ config, metrics, flights: deps.flights, calls: deps.calls, cache: deps.cache, linger: deps.linger }));
  app.use(errorHandler(logger));
  return app;
}
