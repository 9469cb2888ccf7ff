import type { CachedAnswer } from '../pipeline/cache/response-cache.js';
import type { TokenUsage } from '../core/token-usage.js';
import type { RedisDomain } from './redis.js';
import { headFromWire, wireHead, type WireHead } from './wire-head.js';

interface Stored {
  head: WireHead;
  body: string;
  usage: TokenUsage | undefined;
  model: string | undefined;
}

/**
 * The response cache's second tier on Redis, so every instance answers what any instance cached.
 * Same keys (fingerprints, tenant included), same TTL; an entry over `maxEntryBytes` is simply not
 * shared (it stays in the local cache). Runs on its own Redis connection (failure domain): a slow
 * write here never marks flights or rate limits down. Redis memory is bounded by the TTL and by the
 * server's own maxmemory policy. Any Redis trouble is a miss.
 */
export class SharedResponseCache {
  constructor(
    private readonly redis: RedisDomain,
    private readonly ttlMs: number,
    private readonly maxEntryBytes: number,
    private readonly prefix = 'cgw:cache:',
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.redis.run<string | null>(this.prefix + key, ['GET', this.prefix + key]);
    if (typeof raw !== 'string') return undefined;
    try {
      const stored = JSON.parse(raw) as Stored;
      const body = Buffer.from(stored.body, 'base64');
      return { head: headFromWire(stored.head), body: [body], bytes: body.length, usage: stored.usage, model: stored.model };
    } catch {
      return undefined;
    }
  }

  set(key: string, answer: CachedAnswer): void {
    // Base64 grows the body by a third; the cap is on what Redis would hold.
    if (Math.ceil(answer.bytes / 3) * 4 > this.maxEntryBytes) return;
    const stored: Stored = { head: wireHead(answer.head), body: Buffer.concat([...answer.body]).toString('base64'), usage: answer.usage, model: answer.model };
    void this.redis.run(this.prefix + key, ['SET', this.prefix + key, JSON.stringify(stored), 'PX', String(this.ttlMs)]);
  }
}
