/**
 * The local cache-affinity table: prefix identity → the upstream that last served it, while the
 * prefix is warm there. Bounded: at most `capacity` entries, the least recently used evicted first;
 * each entry expires on its own TTL (the breakpoint's: 5 minutes, or 1 hour), on an injectable clock.
 * It also counts the entries pinned to each upstream, so that a prefix seen for the first time can go
 * where the fewest prefixes live (the table's balance). Expired entries are dropped when read, and a
 * few at the old end of the table at each write; until then they still count as pinned.
 */

interface Entry {
  upstream: string;
  expiresAt: number;
}

/** Expired entries a write drops from the old end at most (bounded work per write). */
const SWEEP_PER_WRITE = 4;

export class AffinityTable {
  private readonly entries = new Map<string, Entry>();
  private readonly pinned = new Map<string, number>();

  constructor(
    readonly capacity = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('the affinity table needs a capacity of at least 1');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The upstream that served `key` while it is warm; undefined once expired (then dropped). */
  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) {
      this.unpin(entry.upstream);
      return undefined;
    }
    this.entries.set(key, entry);
    return entry.upstream;
  }

  /** Records that `upstream` served `key`, warm for `ttlMs` from now. */
  set(key: string, upstream: string, ttlMs: number): void {
    const now = this.now();
    const held = this.entries.get(key);
    if (held !== undefined) {
      this.entries.delete(key);
      this.unpin(held.upstream);
    }
    this.sweep(now);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.entries().next().value;
      if (oldest !== undefined) {
        this.entries.delete(oldest[0]);
        this.unpin(oldest[1].upstream);
      }
    }
    this.entries.set(key, { upstream, expiresAt: now + ttlMs });
    this.pinned.set(upstream, (this.pinned.get(upstream) ?? 0) + 1);
  }

  /** Entries that name `upstream` (expired ones not yet dropped included). */
  pinnedTo(upstream: string): number {
    return this.pinned.get(upstream) ?? 0;
  }

  private sweep(now: number): void {
    let checked = 0;
    for (const [key, entry] of this.entries) {
      if (checked++ >= SWEEP_PER_WRITE || entry.expiresAt > now) return;
      this.entries.delete(key);
      this.unpin(entry.upstream);
    }
  }

  private unpin(upstream: string): void {
    const left = (this.pinned.get(upstream) ?? 1) - 1;
    if (left <= 0) this.pinned.delete(upstream);
    else this.pinned.set(upstream, left);
  }
}
