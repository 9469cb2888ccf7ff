import express, { type Express } from 'express';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import type { GatewayMetrics } from './observability/metrics.js';
import type { UpstreamClient } from './upstream/client.js';
import type { FlightGroup } from './pipeline/coalesce/flight-group.js';
import { authenticate } from './http/auth.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequests } from './http/observe.js';
import { proxyHandler } from './http/proxy.js';
import { systemRoutes, type Readiness } from './http/system-routes.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  upstream: UpstreamClient;
  readiness: Readiness;
  flights: FlightGroup;
}

/** The only place the order of stages is written. */
export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  app.use(observeRequests(logger, metrics));
  app.use(systemRoutes(deps.readiness, metrics));
  app.use(authenticate({ gatewayApiKeys: config.gatewayApiKeys, injectsUpstreamKey: config.anthropicApiKey !== undefined }));
  app.use(proxyHandler({ config, upstream: deps.upstream, logger, metrics, flights: deps.flights }));
  app.use(errorHandler(logger));
  return app;
}
