import type { Logger } from '../observability/logger.js';
import type { RedisDomain } from './redis.js';

/** Which coordination the gateway runs: on its own, on one Redis server, or on a Redis Cluster. */
export type CoordinationMode = 'local' | 'redis' | 'redis-cluster';

const MODE_NAMES: Record<CoordinationMode, string> = { local: 'local', redis: 'Redis', 'redis-cluster': 'Redis Cluster' };

/** Host:port of each Redis node (never credentials: a URL's user and password stay out of logs). */
export function redisTargets(url: string, clusterNodes: readonly string[] | undefined): string[] {
  return (clusterNodes ?? [url]).map((u) => {
    try {
      return new URL(u).host;
    } catch {
      return '(unparsable)';
    }
  });
}

/**
 * Makes the state of shared coordination loud: one `warn` line when the first attempt fails at
 * start-up (an unreachable REDIS_URL, before which the gateway only said it was connecting), and one
 * `warn` line on every change afterwards, down to local-only and back up (a first connection that
 * simply succeeds is an `info` line). "Up" is what cross-instance
 * coalescing needs (`redis_available`): the flights connection and its reader both in use. The
 * per-connection lines (redis.ts) say which connection failed and why; these say what it means.
 */
export function logCoordinationAvailability(mode: Exclude<CoordinationMode, 'local'>, targets: string[], flights: RedisDomain, reader: RedisDomain, logger: Logger): void {
  let state: 'connecting' | 'up' | 'down' = 'connecting';
  const fields = { coordination: mode, redis: targets };
  const name = MODE_NAMES[mode];
  const changed = (reported: boolean): void => {
    const up = flights.available && reader.available;
    if (up && state !== 'up') {
      // A healthy start says so at info; coming back after a warn line is a warn line too, so that an
      // operator who sees the one at warn level also sees the other.
      const level = state === 'down' ? 'warn' : 'info';
      state = 'up';
      logger[level](fields, `${name} available: coalescing, rate limits and cache are shared across instances`);
    } else if (!up && state === 'up') {
      state = 'down';
      logger.warn(fields, `${name} unavailable: coordination is local-only (each instance coalesces, rate-limits and caches on its own) until it answers`);
    } else if (!reported && state === 'connecting') {
      state = 'down';
      logger.warn(fields, `${name} unreachable at start-up: coordination is local-only (each instance coalesces, rate-limits and caches on its own) until it answers`);
    }
  };
  flights.onAvailability(changed);
  reader.onAvailability(changed);
}

/** The start-up line naming the coordination mode. */
export function logCoordinationMode(mode: CoordinationMode, targets: string[], logger: Logger): void {
  if (mode === 'local') logger.info({ coordination: mode }, 'coordination: local (REDIS_URL and REDIS_CLUSTER_NODES unset): coalescing, rate limits and cache are per instance');
  else logger.info({ coordination: mode, redis: targets }, `coordination: ${MODE_NAMES[mode]}, connecting (local-only until it answers)`);
}
