import type { CachedAnswer } from '../pipeline/cache/response-cache.js';
import type { FlightHead } from '../pipeline/coalesce/flight.js';
import type { TokenUsage } from '../upstream/usage.js';
import type { SharedRedis } from './redis.js';

interface Stored {
  head: FlightHead;
  body: string;
  usage: TokenUsage | undefined;
  model: string | undefined;
}

/**
 * The response cache's second tier on Redis, so every instance answers what any instance cached.
 * Same keys (fingerprints, tenant included), same TTL; entries over `maxBytes` stay local. Redis
 * memory is bounded by the TTL and by the server's own maxmemory policy. Any Redis trouble is a miss.
 */
export class SharedResponseCache {
  constructor(
    private readonly redis: SharedRedis,
    private readonly ttlMs: number,
    private readonly maxBytes: number,
    private readonly prefix = 'cgw:cache:',
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.redis.run((c) => c.get(this.prefix + key));
    if (typeof raw !== 'string') return undefined;
    try {
      const stored = JSON.parse(raw) as Stored;
      const body = Buffer.from(stored.body, 'base64');
      return { head: stored.head, body: [body], bytes: body.length, usage: stored.usage, model: stored.model };
    } catch {
      return undefined;
    }
  }

  set(key: string, answer: CachedAnswer): void {
    if (answer.bytes > this.maxBytes) return;
    const stored: Stored = { head: answer.head, body: Buffer.concat([...answer.body]).toString('base64'), usage: answer.usage, model: answer.model };
    void this.redis.run((c) => c.set(this.prefix + key, JSON.stringify(stored), { expiration: { type: 'PX', value: this.ttlMs } }));
  }
}
