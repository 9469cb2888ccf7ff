import { Gauge } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { SharedAffinity } from '../pipeline/affinity/shared-affinity.js';
import type { SharedFlights } from '../pipeline/coalesce/shared-flights.js';
import { logCoordinationAvailability, logCoordinationMode, redisTargets } from './availability-log.js';
import { RedisDomain, type RedisDomainOptions } from './redis.js';
import { remoteFlightGauges } from './remote-flight-options.js';
import { RedisSharedFlights } from './remote-flights.js';
import { FallbackRateLimitStore } from './rate-limit-store.js';
import { SharedResponseCache } from './shared-cache.js';
import { RedisSharedAffinity } from './shared-affinity.js';

/**
 * Everything shared through Redis, created together. Loaded only when REDIS_URL (or
 * REDIS_CLUSTER_NODES) is set (a dynamic import in server.ts), so single-instance gateways never
 * load the Redis client.
 *
 * Up to five connections, five failure domains: flight commands (claims, publishes, heartbeats), the
 * flights' one multiplexed reader, rate limits, the shared cache, and the cache-affinity table.
 * Trouble in one (a slow large cache write, a blocked read) never marks another down.
 */
export interface Coordination {
  shared: SharedFlights;
  rateLimitStore: FallbackRateLimitStore;
  sharedCache: SharedResponseCache | undefined;
  /** Opens one more connection (failure domain) for other shared work, closed with the rest (governance budgets). */
  openDomain(name: string): RedisDomain;
  /** The cache-affinity table shared by every instance (CACHE_AFFINITY on, more than one upstream). */
  sharedAffinity: SharedAffinity | undefined;
  close(): Promise<void>;
}

/** The Redis settings (REDIS_*), as the server layer's Config has them: each connection's, and the flights' and shared cache's bounds. */
export interface RedisSettings extends Omit<RedisDomainOptions, 'name'> {
  readonly claimTtlMs: number;
  readonly streamMaxBytes: number;
  readonly cacheMaxEntryBytes: number;
}

/** What coordination reads of the rest of the configuration (the server layer passes its Config, which has these fields). */
export interface CoordinationSettings {
  readonly cache: { readonly enabled: boolean; readonly ttlMs: number };
  readonly coalesceMaxReplayBytes: number;
  readonly coalesceSubscriberBufferBytes: number;
  readonly cacheAffinity: boolean;
  readonly upstreams: readonly unknown[];
}

export function startCoordination(redisConfig: RedisSettings, config: CoordinationSettings, metrics: GatewayMetrics, logger: Logger): Coordination {
  const mode = redisConfig.clusterNodes === undefined ? 'redis' : 'redis-cluster';
  const targets = redisTargets(redisConfig.url, redisConfig.clusterNodes);
  logCoordinationMode(mode, targets, logger);
  const domain = (name: string): RedisDomain => {
    const options: RedisDomainOptions = {
      name,
      url: redisConfig.url,
      clusterNodes: redisConfig.clusterNodes,
      tlsCa: redisConfig.tlsCa,
      commandTimeoutMs: redisConfig.commandTimeoutMs,
      retryMs: redisConfig.retryMs,
    };
    const d = new RedisDomain(options, metrics, logger);
    domainAvailable.set({ domain: name }, 0);
    d.onAvailability((available) => domainAvailable.set({ domain: name }, available ? 1 : 0));
    d.start();
    return d;
  };
  // Per connection, for operators (and tests) to see which kind of Redis work is shared right now;
  // across workers, 1 only while every worker uses that connection.
  const domainAvailable = new Gauge({ name: 'redis_domain_available', help: 'Per Redis connection (flights, reader, rate-limit, cache): 1 while in use, 0 while that work runs locally', labelNames: ['domain'], aggregator: 'min', registers: [metrics.registry] });
  const flights = domain('flights');
  const reader = domain('reader');
  const rateLimits = domain('rate-limit');
  const cache = config.cache.enabled ? domain('cache') : undefined;
  // Cache affinity has a choice to make only among several upstreams (keys).
  const affinity = config.cacheAffinity && config.upstreams.length > 1 ? domain('affinity') : undefined;
  // `redis_available` reports what coalescing across instances depends on.
  metrics.redisAvailable.set(0);
  const report = (): void => {
    metrics.redisAvailable.set(flights.available && reader.available ? 1 : 0);
  };
  flights.onAvailability(report);
  reader.onAvailability(report);
  logCoordinationAvailability(mode, targets, flights, reader, logger);

  const shared = new RedisSharedFlights(
    flights,
    reader,
    {
      keyPrefix: 'cgw:',
      claimTtlMs: redisConfig.claimTtlMs,
      streamTtlMs: 60_000,
      joinCapBytes: config.coalesceMaxReplayBytes,
      maxStreamBytes: Math.max(redisConfig.streamMaxBytes, config.coalesceMaxReplayBytes),
      maxPendingBytes: 16 * 1024 * 1024,
      maxQueuedBytes: config.coalesceSubscriberBufferBytes,
      cluster: redisConfig.clusterNodes !== undefined,
    },
    metrics,
    remoteFlightGauges(metrics),
  );
  const rateLimitStore = new FallbackRateLimitStore(rateLimits, 'cgw:rl:');
  const extra: RedisDomain[] = [];
  return {
    openDomain: (name) => {
      const d = domain(name);
      extra.push(d);
      return d;
    },
    shared,
    rateLimitStore,
    sharedCache: cache === undefined ? undefined : new SharedResponseCache(cache, config.cache.ttlMs, redisConfig.cacheMaxEntryBytes),
    sharedAffinity: affinity === undefined ? undefined : new RedisSharedAffinity(affinity),
    close: async () => {
      rateLimitStore.shutdown();
      await shared.close();
      await Promise.all([flights.close(), reader.close(), rateLimits.close(), cache?.close(), affinity?.close(), ...extra.map((d) => d.close())]);
    },
  };
}
