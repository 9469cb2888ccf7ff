import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import { buildUpstreams } from './upstream/build.js';
import type { UpstreamSet } from './upstream/upstreams.js';
import { UpstreamPoolMetrics } from './upstream/pool-metrics.js';
import { createApp } from './app.js';
import { logCoordinationMode } from './coordination/availability-log.js';
import { TenantHasher } from './http/auth.js';
import { clientErrorHandler, onConnect } from './http/client-errors.js';
import { FlightGroup } from './pipeline/coalesce/flight-group.js';
import { GatewayMetrics } from './observability/metrics.js';
import { PriceTable } from './core/pricing.js';
import { Breakers } from './pipeline/breaker.js';
import { AffinityTable } from './pipeline/affinity/table.js';
import { CacheAffinity } from './pipeline/affinity/cache-affinity.js';
import { RetryBudget } from './upstream/retry.js';
import { upstreamChain } from './pipeline/call/index.js';
import { onFlightHookError } from './pipeline/coalesce/flight.js';
import { closeQueuedWithSocket } from './http/pipelined.js';
import { RequestTracing } from './observability/tracing.js';
import { ResponseCache } from './pipeline/cache/response-cache.js';
import type { Tracer } from '@opentelemetry/api';
import { readFileSync } from 'node:fs';
import type { Governance } from './governance/index.js';
import type { AdminListener } from './admin/server.js';
import type { IncomingMessage } from 'node:http';
import { startAdmission, type Admission, type AdmissionPorts } from './governance/admission.js';
import { LocalWindowCounters } from './governance/key-limits.js';
import type { Principal } from './governance/model.js';

/** How long shutdown waits for queued ledger rows to be written. */
const LEDGER_SHUTDOWN_MS = 5_000;

export interface Gateway {
  readonly server: Server;
  /** http://host:port the gateway listens on (loopback host when bound to all interfaces). */
  readonly url: string;
  /** The configured upstreams (pools, adapters, headroom). */
  readonly upstream: UpstreamSet;
  /** In-flight upstream calls that identical requests can join. */
  readonly flights: FlightGroup;
  readonly metrics: GatewayMetrics;
  /** The circuit breakers per (upstream, model or endpoint). */
  readonly breakers: Breakers;
  /** Keys, teams and the ledger (ADMIN_API_KEY set): the store and the in-memory key cache. */
  readonly governance: Governance | undefined;
  /** The admin API's listener (ADMIN_API_KEY set). */
  readonly admin: AdminListener | undefined;
  /** Budgets, per-key limits and the ledger writer (with the store, or GatewayOptions.admission). */
  readonly admission: Admission | undefined;
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
  /** The event loop's cumulative idle time (tests substitute it; default: libuv's own count). */
  loopIdleMs?: (() => number) | undefined;
  /** WORKERS > 1: this worker's slot; /metrics then answers for every worker (see GatewayMetrics). */
  worker?: string | undefined;
  /** WORKERS > 1 without TENANT_HASH_KEY: the supervisor's random key for this run, the same in every worker. */
  runTenantKey?: string | undefined;
  /**
   * Budgets, per-key limits and the spend ledger (issue 26) over these ports instead of the store's
   * (tests: in-memory fakes). `principalOf` names a request's principal when auth named none.
   */
  admission?: (AdmissionPorts & { principalOf?: (req: IncomingMessage) => Principal | undefined }) | undefined;
}

/**
 * WORKERS > 1: the worker slot that serves the admin listener (the admin API and the console), alone;
 * the supervisor forks a replacement into the same slot when it dies.
 */
export const ADMIN_WORKER_SLOT = '0';

export async function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const readiness = { draining: false };
  const flights = new FlightGroup({
    maxReplayBytes: config.coalesceMaxReplayBytes,
    maxSubscriberBufferBytes: config.coalesceSubscriberBufferBytes,
    writeStallMs: config.clientWriteStallMs,
    rejoinMs: config.coalesceRejoinMs,
    // Every waiting flight was a request in progress moments ago: the same bound.
    maxRejoinWaiting: config.maxConcurrentRequests,
  });
  onFlightHookError((err) => logger.error({ err }, 'flight resource hook failed (contained)'));
  const metrics = new GatewayMetrics({
    modes: config.modes,
    maxModes: config.maxModes,
    maxModels: config.maxModels,
    models: config.models,
    prices: new PriceTable(config.pricing),
    upstreamPrices: new Map(config.upstreams.flatMap((u) => (u.pricing === undefined ? [] : [[u.name, new PriceTable({ ...config.pricing, ...u.pricing })] as const]))),
    flightsInProgress: () => flights.size,
    worker: options.worker,
  });
  const poolMetrics = new UpstreamPoolMetrics(metrics.registry);
  // A provider's own error text may name the deployment (ARNs, accounts, projects): clients get the
  // gateway's words, the operator gets the provider's here, under the request id the client was given.
  const upstream = await buildUpstreams(config, poolMetrics, (name, report) => logger.warn({ upstream: name, ...report }, 'provider error (its text was kept from the client)'));
  poolMetrics.watch(() => upstream.snapshot());
  const breakers = new Breakers(config.breaker.enabled ? config.breaker : undefined, metrics, logger);
  const tracing = new RequestTracing(options.tracer);
  // Shared coordination when REDIS_URL is set; everything also works (locally) while Redis is down.
  const coordination =
    config.redis === undefined ? undefined : (await import('./coordination/index.js')).startCoordination(config.redis, config, metrics, logger);
  if (coordination === undefined) logCoordinationMode('local', [], logger);
  // Cache-affinity routing needs a choice to make: more than one upstream (key).
  const affinity =
    config.cacheAffinity && upstream.size > 1
      ? new CacheAffinity({ table: new AffinityTable(), shared: coordination?.sharedAffinity, refuses: (name, model, endpoint) => breakers.refuses(name, model, endpoint), metrics })
      : undefined;
  const upstreamCall = upstreamChain({
    upstreams: upstream,
    failoverMaxAttempts: config.failoverMaxAttempts,
    breakers,
    metrics,
    logger,
    tracing,
    retryPolicy: config.retry,
    retryBudget: new RetryBudget(config.retry.budgetPercent),
    shared: coordination?.shared,
    maxSseEventBytes: config.maxSseEventBytes,
    breakerProbeTimeoutMs: config.breaker.probeTimeoutMs,
    affinity,
  });
  // Both tiers keep their answers' heads packed (see ResponseCache): what an entry holds is work for every collection it lives through.
  // The cache's entries outlive collections: a small answer's header values go in bytes with its body.
  const cache = config.cache.enabled ? new ResponseCache({ ...config.cache, valuesInBytes: true }) : undefined;
  // Lingering answers are a coalescing window, not a cache: short (COALESCE_LINGER_MS after the call
  // ended), bounded by entries and bytes, complete 2xx answers only (plain and stream), per tenant.
  // The window is about when identical requests arrived, not when a busy gateway got to read them:
  // while the event loop has not been idle once since the call ended, any request it reads may have
  // been waiting in its socket since within the window, so the answer still serves it, for at most
  // COALESCE_LINGER_CATCHUP_MS more (a burst that takes longer to read than the upstream to answer).
  const linger =
    config.coalesceLingerMs > 0
      ? new ResponseCache({
          ttlMs: config.coalesceLingerMs,
          maxEntries: 1_000,
          maxBytes: 16 * 1024 * 1024,
          now: () => performance.now(),
          busyGraceMs: config.coalesceLingerCatchUpMs,
          loopIdleMs: options.loopIdleMs,
          onGraceHit: () => metrics.lingerCatchUp.inc({}),
        })
      : undefined;
  // Tenant ids must match across instances (Redis coordination, shared cache): config.ts demands the
  // key with REDIS_URL. A single instance may run with a random one; its tenant ids then change on restart.
  if (config.tenantHashKey === undefined) {
    logger.warn('TENANT_HASH_KEY is not set: tenant ids are keyed with a random key of this run (shared by its workers) and will differ between instances and restarts');
  }
  const tenants = new TenantHasher(config.tenantHashKey ?? options.runTenantKey ?? randomBytes(32).toString('hex'));
  // Keys, teams and the ledger: loaded before the listener opens, so the first request already knows every key.
  // The store, the admin API and the console are modules of their own, loaded only when ADMIN_API_KEY turns them on.
  const governance = config.governance === undefined ? undefined : await (await import('./governance/index.js')).startGovernance(config.governance, logger, metrics.registry);
  // WORKERS > 1: only ADMIN_WORKER_SLOT listens on the admin port, so node:cluster hands it every admin
  // connection, and a console session (held in that process's memory) holds on each of them.
  const servesAdmin = options.worker === undefined || options.worker === ADMIN_WORKER_SLOT;
  const adminModules = governance === undefined || !servesAdmin ? undefined : await Promise.all([import('./admin/server.js'), import('./console/index.js')]);
  const admin =
    config.governance === undefined || adminModules === undefined || governance === undefined
      ? undefined
      : await adminModules[0].startAdminListener(
          { host: config.governance.adminHost, port: config.governance.adminPort },
          {
            store: governance.store,
            adminApiKey: config.governance.adminApiKey,
            logger,
            version: packageVersion(),
            surface: adminModules[1].createConsole({
              adminKey: config.governance.adminApiKey,
              viewerKey: config.governance.viewerKey,
              metrics: () => metrics.readings(),
              store: governance.store,
              flights: () => flights.describe(),
              breakers: () => breakers.snapshot(),
              headroom: () => upstream.all.map((u) => ({ upstream: u.name, kind: u.kind, tier: u.tier, headroom: u.headroom.reported, restingMs: u.headroom.restLeftMs() })),
              // Who logged in and from where; never the key presented.
              onLogin: (role, address) => logger[role === undefined ? 'warn' : 'info']({ role: role ?? 'refused', address }, role === undefined ? 'console login refused' : 'console login'),
            }).handle,
          },
        );
  // WORKERS > 1: key concurrency slots (and without Redis budgets and limit windows) counted by the supervisor for every worker (main.ts serves them).
  const supervisor = config.countersInSupervisor && options.worker !== undefined ? new (await import('./governance/supervisor-counters.js')).SupervisorCounters() : undefined;
  // Budgets, per-key limits and the spend ledger over the store (the ledger's spend, its inserts).
  const ports = options.admission ?? (governance === undefined ? undefined : { spend: governance.store, ledger: governance.store });
  const admission =
    ports === undefined
      ? undefined
      : startAdmission(
          ports,
          { failMode: config.budgetFailMode, pricing: config.pricing, upstreamPricing: new Map(config.upstreams.flatMap((u) => (u.pricing === undefined ? [] : [[u.name, u.pricing] as const]))) },
          coordination?.openDomain('budgets'),
          metrics.registry,
          logger,
          supervisor,
        );
  // express-rate-limit is loaded only when RATE_LIMIT_RPM turns limiting on.
  const rateLimitStore = coordination?.rateLimitStore ?? supervisor?.rateLimitStore(new LocalWindowCounters());
  const rateLimit = config.rateLimitRpm === 0 ? undefined : (await import('./http/rate-limit.js')).rateLimiter({ rpm: config.rateLimitRpm, metrics, store: rateLimitStore });
  const app = createApp({
    tenants,
    config,
    logger,
    metrics,
    readiness,
    flights,
    upstream: upstreamCall,
    tracing,
    cache,
    linger,
    rateLimit,
    sharedCache: coordination?.sharedCache,
    activeRequests: () => active,
    databaseKeys: governance?.keys,
    admission,
    principalOf: options.admission?.principalOf,
  });
  const server = createServer();
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // Must exceed keepAliveTimeout so a reused idle socket is not cut while headers arrive.
  server.headersTimeout = config.keepAliveTimeoutMs + 5_000;

  let active = 0;
  let idleWaiters: (() => void)[] = [];
  server.on('request', (req, res) => {
    active++;
    closeQueuedWithSocket(req, res);
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
  // What Node's parser refuses, and CONNECT, never reach the app: answered Anthropic-shaped here.
  server.on('clientError', clientErrorHandler(logger));
  server.on('connect', onConnect);

  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => {
      // The gateway does not start: what started before it closes (the admin listener, the store).
      void (async () => {
        await admin?.close();
        await governance?.close();
      })().finally(() => reject(err));
    };
    server.once('error', failed);
    // Node's default backlog (511) drops part of a burst of new connections; the dropped clients come
    // back only with SYN retries 1 s and 3 s later, long after an identical flight ended.
    server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger.info({ url, upstreams: config.upstreams.map((u) => `${u.name} (${u.kind}, tier ${u.tier}) ${u.origin}${u.pathPrefix}`), pid: process.pid }, 'gateway listening');

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
    // Every call has ended (its ledger row queued): write them before the store goes.
    await admission?.close(LEDGER_SHUTDOWN_MS);
    await admin?.close();
    await governance?.close();
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
    breakers,
    governance,
    admin,
    admission,
    activeRequests: () => active,
    shutdown: () => (shutdownPromise ??= shutdown()),
  };
}

/** The gateway's version (package.json next to dist/): the admin API's OpenAPI document names it. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
