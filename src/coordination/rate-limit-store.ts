import { MemoryStore, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { RedisDomain } from './redis.js';

/**
 * Rate-limit counts shared through Redis (rate-limit-redis), with an in-process MemoryStore as
 * the fallback: while Redis is unavailable each instance limits on its own instead of letting
 * every request through or refusing them all. Runs on its own Redis connection (failure domain).
 * Commands are routed by key, so the same store works on a Cluster.
 */
export class FallbackRateLimitStore implements Store {
  private readonly memory = new MemoryStore();
  private redisStore: RedisStore | undefined;
  private options: Options | undefined;

  constructor(
    private readonly redis: RedisDomain,
    readonly prefix: string,
  ) {}

  init(options: Options): void {
    this.options = options;
    this.memory.init(options);
  }

  private shared(): RedisStore | undefined {
    if (!this.redis.available) return undefined;
    if (this.redisStore === undefined) {
      const store = new RedisStore({
        prefix: this.prefix,
        sendCommandCluster: ({ key, command }) => this.redis.send<RedisReply>(key, command),
      });
      // Invariant: every promise the store starts has a handler. Its constructor sends two SCRIPT LOADs
      // and keeps both promises. `increment` awaits `incrementScriptSha` and loads it again after a
      // failure. `getScriptSha` is awaited only by `RedisStore.get`, which this store never calls. So a
      // failed load was a rejection nobody handled, and Node's default for that ends the process. A load
      // fails when it runs past its deadline, or when the domain recycles the connection under it
      // (DisconnectsClientError from the client's destroy).
      store.incrementScriptSha.catch(() => undefined);
      store.getScriptSha.catch(() => undefined);
      if (this.options !== undefined) store.init(this.options);
      this.redisStore = store;
    }
    return this.redisStore;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const store = this.shared();
    if (store !== undefined) {
      try {
        return await store.increment(key);
      } catch {
        // fall through to the local count
      }
    }
    return this.memory.increment(key);
  }

  async decrement(key: string): Promise<void> {
    const store = this.shared();
    if (store !== undefined) {
      try {
        await store.decrement(key);
        return;
      } catch {
        // fall through
      }
    }
    await this.memory.decrement(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.memory.resetKey(key);
    const store = this.shared();
    if (store !== undefined) await store.resetKey(key).catch(() => undefined);
  }

  shutdown(): void {
    this.memory.shutdown();
  }
}
