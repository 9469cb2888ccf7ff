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

/**
 * A kept answer, flat: one object per entry besides the bytes (the body's Buffers, as the flight
 * retained them: never copied) and the usage. The head's header list is kept packed as two lists,
 * its names (one list shared by every entry whose upstream sent the same names in the same order)
 * and its values (strings an answer head mostly shares with the answers before it: upstream/headers.ts),
 * instead of the head's own list of names and values. Both tiers pack: an entry of the response
 * cache lives for seconds, long enough to reach the old generation, and a lingering answer
 * (COALESCE_LINGER_MS) is alive at most scavenges (about a hundred of them at 1,000 req/s): what an
 * entry holds is copied by every collection it lives through (issue 30: twenty headers made 60 of an
 * entry's 67 objects; unpacked lingering heads were most of each scavenge's survivors).
 * Its fields are emptied when the entry leaves (see FlightGroup's Slot: a retired map table must reach nothing).
 */
interface Entry {
  status: number;
  eventStream: boolean;
  /** The header list as given; or, with `names`, its values (see PackedHeaders). */
  headers: FlightHead['headers'] | readonly string[] | undefined;
  names: readonly string[] | undefined;
  /** The head's `upstream` (written as x-gateway-upstream). */
  readonly upstream: string | undefined;
  /** A single chunk is kept as itself (no array of one). */
  body: Buffer | readonly Buffer[] | undefined;
  readonly bytes: number;
  usage: TokenUsage | undefined;
  readonly model: string | undefined;
  readonly expiresAt: number;
  /** The event loop's cumulative idle time when the entry was set (see `busyGraceMs`). */
  readonly idleAtSet: number;
}

/** A header list as its names and its values, in order (two lists instead of a tuple per header). */
export interface PackedHeaders {
  names: readonly string[];
  values: readonly string[];
}

/** The header list packed, or undefined when a value is a list (its shape would not survive). */
export function packHeaders(headers: FlightHead['headers']): PackedHeaders | undefined {
  const values = valuesOf(headers);
  return values === undefined ? undefined : { names: namesIn(headers), values };
}

/** The header values in order, or undefined when one is a list. */
function valuesOf(headers: FlightHead['headers']): string[] | undefined {
  const values = new Array<string>(headers.length >> 1);
  for (let i = 1; i < headers.length; i += 2) {
    const value = headers[i];
    if (typeof value !== 'string') return undefined;
    values[i >> 1] = value;
  }
  return values;
}

/** The header names in order. */
function namesIn(headers: FlightHead['headers']): string[] {
  const names = new Array<string>(headers.length >> 1);
  for (let i = 0; i + 1 < headers.length; i += 2) names[i >> 1] = headers[i] as string;
  return names;
}

/** Whether the headers have exactly these names, in this order. */
function sameNames(headers: FlightHead['headers'], names: readonly string[]): boolean {
  if (headers.length !== 2 * names.length) return false;
  for (let i = 0; i < names.length; i++) if (headers[2 * i] !== names[i]) return false;
  return true;
}

export function unpackHeaders({ names, values }: PackedHeaders): string[] {
  const headers = new Array<string>(2 * names.length);
  for (let i = 0; i < names.length; i++) {
    headers[2 * i] = names[i] as string;
    headers[2 * i + 1] = values[i] ?? '';
  }
  return headers;
}

/** Shared name lists at most, and the longest one shared (longer ones are kept per entry): bounded memory. */
const SHARED_NAME_LISTS = 16;
const SHARED_NAME_LIST_NAMES = 128;

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
  /** Name lists seen, each kept once and shared by the entries that have it (see Entry); the last one found first. */
  private readonly nameLists: (readonly string[])[] = [];
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
    return answerOf(entry);
  }

  private withinBounds(): boolean {
    return this.entries.size <= this.options.maxEntries && this.bytes <= this.options.maxBytes;
  }

  set(key: string, answer: CachedAnswer): void {
    if (answer.bytes > this.options.maxBytes || this.options.maxEntries === 0) return;
    const now = this.now();
    // Expired entries leave as soon as a write sees them at the front (least recently used first),
    // not only when the bounds push them out: a short-lived window (COALESCE_LINGER_MS) must not keep
    // up to maxEntries dead answers alive, which made them old-generation garbage.
    const idle = this.graceMs > 0 ? this.loopIdleMs() : 0;
    // By key (an entry pair per step is an array each).
    for (const oldKey of this.entries.keys()) {
      const oldEntry = this.entries.get(oldKey) as Entry;
      if (this.live(oldEntry, now, idle)) break;
      this.delete(oldKey, oldEntry);
    }
    const existing = this.entries.get(key);
    if (existing !== undefined) this.delete(key, existing);
    const { head, body } = answer;
    const values = valuesOf(head.headers);
    this.entries.set(key, {
      status: head.status,
      eventStream: head.eventStream,
      headers: values ?? head.headers,
      names: values === undefined ? undefined : this.namesOf(head.headers),
      upstream: head.upstream,
      body: body.length === 1 ? body[0] : body,
      bytes: answer.bytes,
      usage: answer.usage,
      model: answer.model,
      expiresAt: now + this.options.ttlMs,
      idleAtSet: idle,
    });
    this.bytes += answer.bytes;
    // Checked before the walk too: a cache within its bounds makes no key iterator.
    if (this.withinBounds()) return;
    for (const oldKey of this.entries.keys()) {
      if (this.withinBounds()) break;
      this.delete(oldKey, this.entries.get(oldKey) as Entry);
    }
  }

  /**
   * The shared list of these headers' names: found by comparing (an upstream sends the same names in
   * the same order answer after answer, and names are interned: upstream/header-names.ts), so a head
   * whose names were seen costs no list. Bounded: past the bounds, a list is simply not shared.
   */
  private namesOf(headers: FlightHead['headers']): readonly string[] {
    const lists = this.nameLists;
    for (let i = 0; i < lists.length; i++) {
      const list = lists[i] as readonly string[];
      if (!sameNames(headers, list)) continue;
      // The last one found goes first: the next head most likely has it too.
      if (i > 0) {
        lists[i] = lists[0] as readonly string[];
        lists[0] = list;
      }
      return list;
    }
    const list = namesIn(headers);
    if (list.length <= SHARED_NAME_LIST_NAMES) {
      // First; the one it displaces goes last (when every place is taken, in place of the last one).
      if (lists.length < SHARED_NAME_LISTS) lists.push(list);
      lists[lists.length - 1] = lists[0] as readonly string[];
      lists[0] = list;
    }
    return list;
  }

  /** Within its TTL, or past it within the busy grace while the loop has not been idle since the entry was set. */
  private live(entry: Entry, now: number, idle?: number): boolean {
    if (entry.expiresAt > now) return true;
    return this.graceMs > 0 && now < entry.expiresAt + this.graceMs && (idle ?? this.loopIdleMs()) === entry.idleAtSet;
  }

  private delete(key: string, entry: Entry): void {
    entry.headers = undefined;
    entry.names = undefined;
    entry.body = undefined;
    entry.usage = undefined;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}

/** A live entry as the answer it keeps (a new head and body list per hit; the bytes are the entry's own). */
function answerOf(entry: Entry): CachedAnswer {
  const { headers, names, body, upstream } = entry;
  // Packed values always come with their names (set together, emptied together).
  const list = names === undefined ? (headers ?? []) : unpackHeaders({ names, values: headers as readonly string[] });
  // `upstream` only when there is one: the head has the shape it was set with.
  const head: FlightHead = upstream === undefined ? { status: entry.status, headers: list, eventStream: entry.eventStream } : { status: entry.status, headers: list, eventStream: entry.eventStream, upstream };
  return {
    head,
    body: body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body,
    bytes: entry.bytes,
    usage: entry.usage,
    model: entry.model,
  };
}
