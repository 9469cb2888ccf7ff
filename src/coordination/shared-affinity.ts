import type { SharedAffinity } from '../pipeline/affinity/shared-affinity.js';
import type { RedisDomain } from './redis.js';

/**
 * The cache-affinity table's tier on Redis, so every instance sends one session's calls to the key
 * that holds its prompt cache warm, whichever instance the session's calls reach. One string per
 * prefix identity (a digest: no secret, no prompt text), the upstream's name as value, expiring with
 * the prompt cache's TTL (PX). Its own connection (failure domain). Any trouble, or no answer within
 * REDIS_COMMAND_TIMEOUT_MS, is a miss: the local table decides (pipeline/affinity/shared-affinity.ts).
 */
export class RedisSharedAffinity implements SharedAffinity {
  constructor(
    private readonly redis: RedisDomain,
    private readonly prefix = 'cgw:aff:',
  ) {}

  async get(key: string): Promise<string | undefined> {
    const value = await this.redis.run<string | null>(this.prefix + key, ['GET', this.prefix + key]);
    return typeof value === 'string' && value !== '' ? value : undefined;
  }

  set(key: string, upstream: string, ttlMs: number): void {
    void this.redis.run(this.prefix + key, ['SET', this.prefix + key, upstream, 'PX', String(ttlMs)]);
  }
}
