import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { SharedRedis } from './redis.js';
import { RemoteFlights } from './remote-flights.js';
import { FallbackRateLimitStore } from './rate-limit-store.js';
import { SharedResponseCache } from './shared-cache.js';
import { RemoteSharedFlights } from './shared-adapter.js';
import type { SharedFlights } from '../pipeline/coalesce/shared-flights.js';

/**
 * Everything shared through Redis, created together. Loaded only when REDIS_URL is set (a dynamic
 * import in server.ts), so single-instance gateways never load the Redis client.
 */
export interface Coordination {
  shared: SharedFlights;
  rateLimitStore: FallbackRateLimitStore;
  sharedCache: SharedResponseCache | undefined;
  close(): Promise<void>;
}

export function startCoordination(
  redisConfig: NonNullable<Config['redis']>,
  config: Config,
  metrics: GatewayMetrics,
  logger: Logger,
): Coordination {
  const redis = new SharedRedis(redisConfig, metrics, logger);
  redis.start();
  const rateLimitStore = new FallbackRateLimitStore(redis, 'cgw:rl:');
  return {
    shared: new RemoteSharedFlights(new RemoteFlights(redis, { claimTtlMs: redisConfig.claimTtlMs, streamTtlMs: 60_000, maxStreamBytes: config.coalesceMaxReplayBytes, keyPrefix: 'cgw:' })),
    rateLimitStore,
    sharedCache: config.cache.enabled ? new SharedResponseCache(redis, config.cache.ttlMs, config.cache.maxBytes) : undefined,
    close: async () => {
      rateLimitStore.shutdown();
      await redis.close();
    },
  };
}
