import { GatewayError } from '../core/errors.js';
import type { BudgetMetrics } from './budget-metrics.js';
import type { Principal } from './model.js';
import type { RedisCommands } from './redis-budget-counters.js';
import { safeId } from './redis-budget-counters.js';

/**
 * Per-key limits of a database key (`principal.limits`, issue 26), refused with 429
 * `rate_limit_error` and `retry-after` (retryable: the limit frees up by itself):
 * - requestsPerMinute: counted at admission, in fixed one-minute windows (UTC minutes);
 * - tokensPerMinute: the billed tokens of the key's calls in the current minute, added when each
 *   call ends; a call is refused once the minute's tokens reached the limit (a call's own tokens
 *   are known only after it);
 * - maxConcurrent: calls of the key in progress ON THIS INSTANCE (per instance: a shared count
 *   would need a release that survives a crashed instance; N instances admit at most N x the limit).
 *   With WORKERS > 1 the supervisor counts for its workers, and gives a worker's slots back when it exits.
 * Minute counts are shared through Redis with REDIS_URL (one INCRBY per request and per call end),
 * else (and while Redis is unavailable) counted in process, like RATE_LIMIT_RPM.
 */

export interface WindowCounters {
  /** Adds `amount` to the window's count and answers the new count. */
  add(key: string, amount: number, windowEnd: number): Promise<number>;
  /** The window's count. */
  get(key: string): Promise<number>;
}

const MINUTE_MS = 60_000;
/** The release of a call that took no slot (its key has no maxConcurrent). */
const NO_SLOT: SlotRelease = () => undefined;
/** In-process windows kept at most (the oldest are dropped first: they belong to minutes gone by). */
const MAX_LOCAL_WINDOWS = 100_000;

export class LocalWindowCounters implements WindowCounters {
  private readonly counts = new Map<string, { n: number; end: number }>();

  add(key: string, amount: number, windowEnd: number): Promise<number> {
    return Promise.resolve(this.addNow(key, amount, windowEnd));
  }

  get(key: string): Promise<number> {
    return Promise.resolve(this.getNow(key));
  }

  /** `add`, answered in this turn. */
  addNow(key: string, amount: number, windowEnd: number): number {
    const c = this.counts.get(key);
    if (c !== undefined) {
      c.n += amount;
      return c.n;
    }
    if (this.counts.size >= MAX_LOCAL_WINDOWS) this.counts.delete(this.counts.keys().next().value as string);
    this.counts.set(key, { n: amount, end: windowEnd });
    return amount;
  }

  /** `get`, answered in this turn. */
  getNow(key: string): number {
    return this.counts.get(key)?.n ?? 0;
  }

  /** Drops windows that have ended (called at most once per minute). */
  sweep(now: number): void {
    for (const [key, c] of this.counts) if (c.end <= now) this.counts.delete(key);
  }
}

const ADD = `local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return n`;

/** Minute windows in Redis; any trouble falls back to the in-process count. */
export class RedisWindowCounters implements WindowCounters {
  constructor(
    private readonly redis: RedisCommands,
    private readonly local: LocalWindowCounters,
    private readonly prefix = 'cgw:kl:',
  ) {}

  async add(key: string, amount: number, windowEnd: number): Promise<number> {
    try {
      return Number(await this.redis.send<number | string>(this.prefix + key, ['EVAL', ADD, '1', this.prefix + key, String(amount), String(windowEnd + MINUTE_MS)]));
    } catch {
      return this.local.add(key, amount, windowEnd);
    }
  }

  async get(key: string): Promise<number> {
    try {
      return Number((await this.redis.send<string | null>(this.prefix + key, ['GET', this.prefix + key])) ?? 0);
    } catch {
      return this.local.get(key);
    }
  }
}

/** A slot's release: idempotent. */
export type SlotRelease = () => void;

/** Concurrency slots of keys (maxConcurrent): taken at admission, given back when the response is over. */
export interface ConcurrencySlots {
  /** Takes one of `key`'s at most `max` slots: its release, or undefined when every slot is taken. */
  take(key: string, max: number): Promise<SlotRelease | undefined>;
}

/** Slots counted in this process. */
export class LocalConcurrencySlots implements ConcurrencySlots {
  private readonly running = new Map<string, number>();

  take(key: string, max: number): Promise<SlotRelease | undefined> {
    return Promise.resolve(this.takeNow(key, max));
  }

  /** `take`, answered in this turn. */
  takeNow(key: string, max: number): SlotRelease | undefined {
    const n = this.inProgress(key);
    if (n >= max) return undefined;
    this.running.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.inProgress(key) - 1;
      if (left <= 0) this.running.delete(key);
      else this.running.set(key, left);
    };
  }

  /** Slots of the key taken now. */
  inProgress(key: string): number {
    return this.running.get(key) ?? 0;
  }
}

export class KeyLimits {
  private sweptAt = 0;

  constructor(
    private readonly counters: WindowCounters,
    private readonly metrics: BudgetMetrics | undefined,
    private readonly local: LocalWindowCounters | undefined,
    private readonly now: () => number = Date.now,
    private readonly slots: ConcurrencySlots = new LocalConcurrencySlots(),
  ) {}

  /**
   * Admits one request of the key or throws KEY_LIMITED. Resolves with the release of its
   * concurrency slot (call it exactly once, when the response is over; idempotent).
   */
  async admit(principal: Principal): Promise<() => void> {
    const { requestsPerMinute, tokensPerMinute, maxConcurrent } = principal.limits;
    const now = this.now();
    if (this.local !== undefined && now - this.sweptAt >= MINUTE_MS) {
      this.sweptAt = now;
      this.local.sweep(now);
    }
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const end = minute + MINUTE_MS;
    const retryAfter = String(Math.max(1, Math.ceil((end - now) / 1000)));
    const id = safeId(principal.keyId);
    // The slot first (taken atomically where it is counted): a call refused for concurrency counts in no minute.
    const release = maxConcurrent === undefined ? NO_SLOT : await this.slots.take(principal.keyId, maxConcurrent);
    if (release === undefined) {
      this.refuse(principal, 'concurrency');
      throw new GatewayError('KEY_LIMITED', `This key allows ${String(maxConcurrent)} concurrent requests (per gateway instance); retry when one has finished.`, { headers: { 'retry-after': '1' } });
    }
    try {
      if (tokensPerMinute !== undefined && (await this.counters.get(`tpm:${id}:${minute}`)) >= tokensPerMinute) {
        this.refuse(principal, 'tpm');
        throw new GatewayError('KEY_LIMITED', `This key's limit of ${tokensPerMinute} tokens per minute is used up. Retry after ${retryAfter}s.`, { headers: { 'retry-after': retryAfter } });
      }
      if (requestsPerMinute !== undefined && (await this.counters.add(`rpm:${id}:${minute}`, 1, end)) > requestsPerMinute) {
        this.refuse(principal, 'rpm');
        throw new GatewayError('KEY_LIMITED', `This key's limit of ${requestsPerMinute} requests per minute is reached. Retry after ${retryAfter}s.`, { headers: { 'retry-after': retryAfter } });
      }
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** A call of the key ended having billed `tokens` (tokensPerMinute). */
  spentTokens(principal: Principal, tokens: number): void {
    if (principal.limits.tokensPerMinute === undefined) return;
    const minute = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    void this.counters.add(`tpm:${safeId(principal.keyId)}:${minute}`, tokens, minute + MINUTE_MS);
  }

  private refuse(principal: Principal, reason: string): void {
    this.metrics?.refused(principal.teamName, reason);
  }
}
