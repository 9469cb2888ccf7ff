import { createClient } from 'redis';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/**
 * The gateway's one Redis connection, behind its own small circuit breaker: Redis trouble must
 * never take requests down. Every command has a deadline; a failure marks Redis unavailable for
 * `retryMs`, during which callers get `undefined` at once and fall back to local-only behaviour.
 * Commands fail fast while disconnected (no offline queue).
 */

export type RedisClient = ReturnType<typeof createClient>;

export interface SharedRedisOptions {
  url: string;
  commandTimeoutMs: number;
  retryMs: number;
}

export class SharedRedis {
  private readonly client: RedisClient;
  private downUntil = 0;
  private connected = false;
  private closed = false;

  constructor(
    private readonly options: SharedRedisOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
    });
    this.client.on('error', (err: unknown) => this.markDown(err));
    this.client.on('ready', () => {
      if (!this.connected) logger.info('redis connected: shared coordination on');
      this.connected = true;
      metrics.redisAvailable.set(1);
    });
    this.client.on('end', () => {
      this.connected = false;
      metrics.redisAvailable.set(0);
    });
    metrics.redisAvailable.set(0);
  }

  /** Connects in the background; the gateway serves locally until Redis is ready. */
  start(): void {
    this.client.connect().catch((err: unknown) => this.markDown(err));
  }

  get available(): boolean {
    return this.connected && Date.now() >= this.downUntil;
  }

  /** A second connection for blocking reads (XREAD BLOCK holds its connection). */
  async duplicate(): Promise<RedisClient | undefined> {
    if (!this.available) return undefined;
    const copy = this.client.duplicate();
    copy.on('error', () => undefined);
    try {
      await withDeadline(copy.connect(), this.options.commandTimeoutMs);
      return copy;
    } catch (err) {
      this.markDown(err);
      copy.destroy();
      return undefined;
    }
  }

  /** Runs `op` if Redis is available, within the command deadline; undefined on any trouble. */
  async run<T>(op: (client: RedisClient) => Promise<T>): Promise<T | undefined> {
    if (!this.available) return undefined;
    try {
      return await withDeadline(op(this.client), this.options.commandTimeoutMs);
    } catch (err) {
      this.markDown(err);
      return undefined;
    }
  }

  /** Like `run`, but rethrows (for stores that report errors themselves). */
  async runOrThrow<T>(op: (client: RedisClient) => Promise<T>): Promise<T> {
    if (!this.available) throw new Error('redis unavailable');
    try {
      return await withDeadline(op(this.client), this.options.commandTimeoutMs);
    } catch (err) {
      this.markDown(err);
      throw err;
    }
  }

  markDown(err: unknown): void {
    if (this.closed) return;
    const wasUp = this.available;
    this.downUntil = Date.now() + this.options.retryMs;
    this.metrics.redisErrors.inc();
    this.metrics.redisAvailable.set(0);
    if (wasUp || !this.connected) {
      this.logger.warn({ err: err instanceof Error ? err.message : String(err), retryMs: this.options.retryMs }, 'redis unavailable: falling back to local-only coordination');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      this.client.destroy();
    } catch {
      // already closed
    }
    return Promise.resolve();
  }
}

export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis command exceeded ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
