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
 * retained them: never copied) and the usage. The head's header list is kept packed as two strings,
 * its names (one string shared by every entry whose upstream sent the same names in the same order)
 * and its values, instead of an array, a tuple and two strings per header. Both tiers pack: an entry
 * of the response cache lives for seconds, long enough to reach the old generation, and a lingering
 * answer (COALESCE_LINGER_MS) is alive at most scavenges (about a hundred of them at 1,000 req/s):
 * what an entry holds is copied by every collection it lives through (issue 30: twenty headers made
 * 60 of an entry's 67 objects; unpacked lingering heads were most of each scavenge's survivors).
 * Its fields are emptied when the entry leaves (see FlightGroup's Slot: a retired map table must reach nothing).
 */
interface Entry {
  status: number;
  eventStream: boolean;
  /** The header list as given; or, with `names`, its values packed (see PackedHeaders). */
  headers: FlightHead['headers'] | string | undefined;
  names: string | undefined;
  /** A single chunk is kept as itself (no array of one). */
  body: Buffer | readonly Buffer[] | undefined;
  readonly bytes: number;
  usage: TokenUsage | undefined;
  readonly model: string | undefined;
  readonly expiresAt: number;
  /** The event loop's cumulative idle time when the entry was set (see `busyGraceMs`). */
  readonly idleAtSet: number;
}

/** A header list as its names and its values, each joined by `\n` (HTTP forbids CR, LF and NUL in both). */
export interface PackedHeaders {
  names: string;
  values: string;
}

/**
 * The header list packed, or undefined when it cannot be packed exactly: a value that is a list (its
 * shape would not survive), an empty name, or a name or value holding the separator (an upstream
 * answer never has either).
 */
export function packHeaders(headers: FlightHead['headers']): PackedHeaders | undefined {
  const names: string[] = [];
  const values: string[] = [];
  for (const [name, value] of headers) {
    if (typeof value !== 'string' || name === '' || name.includes('\n') || value.includes('\n')) return undefined;
    names.push(name);
    values.push(value);
  }
  return { names: names.join('\n'), values: values.join('\n') };
}

/** Whether the headers have exactly these names, in this order (same length checked by the caller). */
function sameNames(headers: FlightHead['headers'], names: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) if ((headers[i] as FlightHead['headers'][number])[0] !== names[i]) return false;
  return true;
}

export function unpackHeaders({ names, values }: PackedHeaders): [string, string][] {
  const headers: [string, string][] = [];
  if (names === '') return headers;
  const n = names.split('\n');
  const v = values.split('\n');
  for (let i = 0; i < n.length; i++) headers.push([n[i] as string, v[i] ?? '']);
  return headers;
}

/** Shared name lists at most, and the longest one shared (longer ones are kept per entry): bounded memory. */
const SHARED_NAME_LISTS = 64;
const SHARED_NAME_LIST_CHARS = 4096;

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
  /** Packed name lists seen, each kept once and shared by the entries that have it (see Entry). */
  private readonly nameLists = new Map<string, string>();
  /** The names of the last head packed with a shared name list: that list, and its names one by one. */
  private lastNames: { joined: string; list: readonly string[] } | undefined;
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
    const { head, body } = answer;
    const packed = this.pack(head.headers);
    this.entries.set(key, {
      status: head.status,
      eventStream: head.eventStream,
      headers: packed === undefined ? head.headers : packed.values,
      names: packed?.names,
      body: body.length === 1 ? body[0] : body,
      bytes: answer.bytes,
      usage: answer.usage,
      model: answer.model,
      expiresAt: now + this.options.ttlMs,
      idleAtSet: idle,
    });
    this.bytes += answer.bytes;
    for (const [oldKey, oldEntry] of this.entries) {
      if (this.entries.size <= this.options.maxEntries && this.bytes <= this.options.maxBytes) break;
      this.delete(oldKey, oldEntry);
    }
  }

  /**
   * packHeaders, with the names shared: a head whose names are those of the last packed head (an
   * upstream sends the same names in the same order answer after answer; names are interned, see
   * upstream/header-names.ts) is recognized by comparing them, and its names cost no string.
   */
  private pack(headers: FlightHead['headers']): PackedHeaders | undefined {
    const last = this.lastNames;
    if (last === undefined || last.list.length !== headers.length || !sameNames(headers, last.list)) {
      const packed = packHeaders(headers);
      if (packed === undefined) return undefined;
      const names = this.shared(packed.names);
      // One list remembered, and a short one: bounded.
      if (names.length <= SHARED_NAME_LIST_CHARS) this.lastNames = { joined: names, list: headers.map(([name]) => name) };
      return { names, values: packed.values };
    }
    const values = new Array<string>(headers.length);
    for (let i = 0; i < headers.length; i++) {
      const value = (headers[i] as FlightHead['headers'][number])[1];
      if (typeof value !== 'string' || value.includes('\n')) return undefined;
      values[i] = value;
    }
    return { names: last.joined, values: values.join('\n') };
  }

  /** The one copy of a name list (bounded: past the bounds, a list is simply not shared). */
  private shared(names: string): string {
    const known = this.nameLists.get(names);
    if (known !== undefined) return known;
    if (this.nameLists.size < SHARED_NAME_LISTS && names.length <= SHARED_NAME_LIST_CHARS) this.nameLists.set(names, names);
    return names;
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
  const { headers, names, body } = entry;
  // Packed values always come with their names (set together, emptied together).
  return {
    head: { status: entry.status, headers: typeof headers === 'string' ? unpackHeaders({ names: names ?? '', values: headers }) : (headers ?? []), eventStream: entry.eventStream },
    body: body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body,
    bytes: entry.bytes,
    usage: entry.usage,
    model: entry.model,
  };
}
