import type { FlightHead } from '../coalesce/flight.js';
import type { TokenUsage } from '../../core/token-usage.js';

/** A complete, successful upstream answer, replayable byte for byte. */
export interface CachedAnswer {
  head: FlightHead;
  body: readonly Buffer[];
  bytes: number;
  usage: TokenUsage | undefined;
  model: string | undefined;
}

/** The answer is emptied out when the entry leaves (see FlightGroup's Slot: a retired map table must reach nothing). */
interface Entry {
  answer: CachedAnswer | undefined;
  readonly bytes: number;
  readonly expiresAt: number;
  /** The event loop's cumulative idle time when the entry was set (see `busyGraceMs`). */
  readonly idleAtSet: number;
}

export interface ResponseCacheOptions {
  ttlMs: number;
  maxEntries: number;
  maxBytes: number;
  now?: () => number;
  /**
   * Past its TTL, an entry still answers for at most this long while the process has not waited for
   * input once since the entry was set (`loopIdleMs` unchanged): every request read in that time may
   * have been waiting in the socket since before the TTL ran out. 0 (the default) = off.
   */
  busyGraceMs?: number;
  /** Cumulative time the event loop spent waiting for I/O (ms); it does not move while the loop is busy. */
  loopIdleMs?: (() => number) | undefined;
  /** Told each time an entry answers past its TTL, within the busy grace. */
  onGraceHit?: (() => void) | undefined;
}

/** The event loop's cumulative idle time: libuv counts only time blocked waiting for I/O. */
export const eventLoopIdleMs = (): number => performance.nodeTiming.idleTime;

/**
 * Exact-match answers by fingerprint (which includes the tenant: one tenant never reads another's
 * entry). LRU, bounded by entry count and by bytes, each entry living at most `ttlMs` (plus
 * `busyGraceMs` while the loop has not been idle since it was set). Only
 * complete 2xx answers are offered to it; the caller decides that.
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly now: () => number;
  private readonly graceMs: number;
  private readonly loopIdleMs: () => number;

  constructor(private readonly options: ResponseCacheOptions) {
    this.now = options.now ?? Date.now;
    this.graceMs = options.busyGraceMs ?? 0;
    this.loopIdleMs = options.loopIdleMs ?? eventLoopIdleMs;
  }

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  get(key: string): CachedAnswer | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (!this.live(entry, now)) {
      this.delete(key, entry);
      return undefined;
    }
    if (entry.expiresAt <= now) this.options.onGraceHit?.();
    // Re-insert: Map order is the LRU order, least recently used first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.answer;
  }

  set(key: string, answer: CachedAnswer): void {
    if (answer.bytes > this.options.maxBytes || this.options.maxEntries === 0) return;
    const now = this.now();
    // Expired entries leave as soon as a write sees them at the front (least recently used first),
    // not only when the bounds push them out: a short-lived window (COALESCE_LINGER_MS) must not keep
    // up to maxEntries dead answers alive, which made them old-generation garbage.
    const idle = this.graceMs > 0 ? this.loopIdleMs() : 0;
    for (const [oldKey, oldEntry] of this.entries) {
      if (this.live(oldEntry, now, idle)) break;
      this.delete(oldKey, oldEntry);
    }
    const existing = this.entries.get(key);
    if (existing !== undefined) this.delete(key, existing);
    this.entries.set(key, { answer, bytes: answer.bytes, expiresAt: now + this.options.ttlMs, idleAtSet: idle });
    this.bytes += answer.bytes;
    for (const [oldKey, oldEntry] of this.entries) {
      if (this.entries.size <= this.options.maxEntries && this.bytes <= this.options.maxBytes) break;
      this.delete(oldKey, oldEntry);
    }
  }

  /** Within its TTL, or past it within the busy grace while the loop has not been idle since the entry was set. */
  private live(entry: Entry, now: number, idle?: number): boolean {
    if (entry.expiresAt > now) return true;
    return this.graceMs > 0 && now < entry.expiresAt + this.graceMs && (idle ?? this.loopIdleMs()) === entry.idleAtSet;
  }

  private delete(key: string, entry: Entry): void {
    entry.answer = undefined;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
