import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import { UpstreamClient } from './upstream/client.js';
import { createApp } from './app.js';
import { FlightGroup } from './pipeline/coalesce/flight-group.js';
import { GatewayMetrics } from './observability/metrics.js';
import { PriceTable } from './observability/pricing.js';
import { Breakers } from './pipeline/breaker.js';
import { RetryBudget, RetryingSender } from './upstream/retry.js';
import { RequestTracing } from './observability/tracing.js';
import { ResponseCache } from './pipeline/cache/response-cache.js';
import type { Tracer } from '@opentelemetry/api';

export interface Gateway {
  readonly server: Server;
  /** http://host:port the gateway listens on (loopback host when bound to all interfaces). */
  readonly url: string;
  readonly upstream: UpstreamClient;
  /** In-flight upstream calls that identical requests can join. */
  readonly flights: FlightGroup;
  readonly metrics: GatewayMetrics;
  /** Requests being answered right now. */
  activeRequests(): number;
  /**
   * Graceful stop: readiness turns 503, then (after SHUTDOWN_DELAY_MS) the listener closes, idle
   * keep-alive connections close, in-flight requests and streams get SHUTDOWN_GRACE_MS to finish,
   * then whatever remains is cut and the upstream pools close. Idempotent.
   */
  shutdown(): Promise<{ forced: number }>;
}

export interface GatewayOptions {
  /** Tracer for request and upstream spans; tracing is off without one. */
  tracer?: Tracer | undefined;
}

export async function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const upstream = new UpstreamClient({
    origin: config.upstreamOrigin,
    pathPrefix: config.upstreamPathPrefix,
    connections: config.upstreamConnections,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    headersTimeoutMs: config.upstreamHeadersTimeoutMs,
    bodyTimeoutMs: config.upstreamBodyTimeoutMs,
    keepAliveTimeoutMs: config.upstreamKeepAliveTimeoutMs,
  });
  const readiness = { draining: false };
  const flights = new FlightGroup({
    maxReplayBytes: config.coalesceMaxReplayBytes,
    maxSubscriberBufferBytes: config.coalesceSubscriberBufferBytes,
  });
  const metrics = new GatewayMetrics({
    modes: config.modes,
    maxModes: config.maxModes,
    maxModels: config.maxModels,
    prices: new PriceTable(config.pricing),
    flightsInProgress: () => flights.size,
  });
  const breakers = new Breakers(config.upstreamOrigin, config.breaker.enabled ? config.breaker : undefined, metrics, logger);
  const sender = new RetryingSender(upstream, config.retry, new RetryBudget(config.retry.budgetPercent), metrics);
  const tracing = new RequestTracing(options.tracer);
  // Shared coordination when REDIS_URL is set; everything also works (locally) while Redis is down.
  const coordination =
    config.redis === undefined ? undefined : (await import('./coordination/index.js')).startCoordination(config.redis, config, metrics, logger);
  const calls = { sender, breakers, metrics, logger, tracing, serverAddress: new URL(config.upstreamOrigin).host, shared: coordination?.shared };
  const cache = config.cache.enabled ? new ResponseCache(config.cache) : undefined;
  // Lingering results are a coalescing window, not a cache: short, small, plain answers only.
  const linger = config.coalesceLingerMs > 0 ? new ResponseCache({ ttlMs: config.coalesceLingerMs, maxEntries: 1_000, maxBytes: 16 * 1024 * 1024 }) : undefined;
  const app = createApp({
    config,
    logger,
    metrics,
    readiness,
    flights,
    calls,
    tracing,
    cache,
    linger,
    rateLimitStore: coordination?.rateLimitStore,
    sharedCache: coordination?.sharedCache,
    activeRequests: () => active,
  });
  const server = createServer();
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // Must exceed keepAliveTimeout so a reused idle socket is not cut while headers arrive.
  server.headersTimeout = config.keepAliveTimeoutMs + 5_000;

  let active = 0;
  let idleWaiters: (() => void)[] = [];
  server.on('request', (_req, res) => {
    active++;
    if (readiness.draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      active--;
      if (active === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const wake of waiters) wake();
      }
    });
  });
  // After the bookkeeping listener: it must see the request before the app can answer it.
  server.on('request', app);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger.info({ url, upstream: config.upstreamBaseUrl, pid: process.pid }, 'gateway listening');

  let shutdownPromise: Promise<{ forced: number }> | undefined;
  const shutdown = async (): Promise<{ forced: number }> => {
    readiness.draining = true;
    logger.info({ active, delayMs: config.shutdownDelayMs, graceMs: config.shutdownGraceMs }, 'draining');
    if (config.shutdownDelayMs > 0) await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Keep-alive sockets become idle as their responses end (those carry `connection: close`).
    const idleSweep = setInterval(() => server.closeIdleConnections(), 250);
    let forced = 0;
    if (active > 0) {
      let graceTimer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => idleWaiters.push(resolve));
      const grace = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, config.shutdownGraceMs)));
      await Promise.race([idle, grace]);
      clearTimeout(graceTimer);
      forced = active;
    }
    clearInterval(idleSweep);
    if (forced > 0) logger.warn({ forced }, 'grace period over: cutting remaining connections');
    server.closeAllConnections();
    await closed;
    breakers.shutdown();
    await coordination?.close();
    await upstream.close();
    logger.info({ forced }, 'stopped');
    return { forced };
  };

  return {
    server,
    url,
    upstream,
    flights,
    metrics,
    activeRequests: () => active,
    shutdown: () => (shutdownPromise ??= shutdown()),
  };
}
