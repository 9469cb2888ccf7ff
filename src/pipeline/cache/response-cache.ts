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
 * A kept answer, flat: one object per entry besides the body's bytes (`keptBody`: a small body copied
 * once into node's Buffer pool, a large one as the flight retained it). The head's header list is kept packed as two lists,
 * its names (one list shared by every entry whose upstream sent the same names in the same order)
 * and its values (strings an answer head mostly shares with the answers before it: upstream/headers.ts),
 * instead of the head's own list of names and values. Both tiers pack: an entry of the response
 * cache lives for seconds, long enough to reach the old generation, and a lingering answer
 * (COALESCE_LINGER_MS) is alive at most scavenges (about a hundred of them at 1,000 req/s): what an
 * entry holds is copied by every collection it lives through (issue 30: twenty headers made 60 of an
 * entry's 67 objects; unpacked lingering heads were most of each scavenge's survivors).
 * Every number field holds a small integer (a V8 Smi: no object of its own): times are whole
 * milliseconds since the cache was made, the loop's idle time a count of its changes, and the usage
 * its four counts (a double, or an object per usage, was three more objects per entry: issue 30).
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
  /** The body as `keptBody` keeps it (a single Buffer is kept as itself: no array of one); with `bodyAt`, the values and the body (`inBytes`). */
  body: Buffer | readonly Buffer[] | undefined;
  /** Where the body starts in `body` when the header values are kept in front of it (`inBytes`); else 0. */
  readonly bodyAt: number;
  readonly bytes: number;
  /** The usage's counts; `input` is NO_USAGE when the answer had none. */
  readonly input: number;
  readonly output: number;
  readonly cacheCreation: number;
  readonly cacheRead: number;
  readonly model: string | undefined;
  /** Whole milliseconds since the cache's epoch (`epochMs`) after which the entry is past its TTL. */
  readonly expiresAt: number;
  /** The idle count (`idleCount`) when the entry was set (see `busyGraceMs`). */
  readonly idleAtSet: number;
}

/** Entry.input of an answer without usage. */
const NO_USAGE = -1;

/**
 * The number as a 32-bit integer when it is one (V8 then stores it in the entry as a Smi). A number
 * V8 holds as a double, of integral value or not, turns the field it is stored in into a boxed double
 * for every entry after it (measured: two of an entry's number fields were boxed); other numbers are
 * kept as they are.
 */
const int = (n: number): number => ((n | 0) === n ? n | 0 : n);

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
  /**
   * Keep a small answer's header values as bytes in front of its body, in the one pooled Buffer
   * (see `inBytes`), instead of as a list of strings: a few hundred bytes and four objects fewer per
   * entry, for about 2 µs more per write (measured: 3.6 against 1.3-2.7) and a decoding per hit. For entries that outlive
   * collections (the response cache's live through two scavenges, to the old generation); a
   * lingering answer mostly dies before its first, and is not worth the encoding.
   */
  valuesInBytes?: boolean;
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
  /** `now()` when the cache was made: entries' times count from it, in whole milliseconds (Smis). */
  private readonly epochMs: number;
  /** The loop's idle time last read, and how many times it was seen to change: an entry compares counts (Smis), not the double itself. */
  private idleSeen = NaN;
  private idleChanges = 0;
  /** The model of the last answer set: the next answer's equal model keeps this string, not one of its own. */
  private lastModel: string | undefined;

  constructor(private readonly options: ResponseCacheOptions) {
    this.now = options.now ?? Date.now;
    this.graceMs = options.busyGraceMs ?? 0;
    this.loopIdleMs = options.loopIdleMs ?? eventLoopIdleMs;
    this.epochMs = this.now();
  }

  /**
   * Whole milliseconds since the epoch (rounded down: an entry may leave up to 1 ms early, never late).
   * Past about 24 days of the process's life they no longer fit a Smi and are boxed again: still exact, only heavier.
   */
  private sinceEpoch(now: number): number {
    return int(Math.floor(now - this.epochMs));
  }

  /** The count of changes of the loop's idle time, read now (it only grows: an unchanged count is an unchanged time). */
  private idleCount(): number {
    const idle = this.loopIdleMs();
    if (idle !== this.idleSeen) {
      this.idleSeen = idle;
      this.idleChanges++;
    }
    return this.idleChanges;
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
    const now = this.sinceEpoch(this.now());
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

  /** Keeps the answer (true), unless it is larger than the byte bound (false). */
  set(key: string, answer: CachedAnswer): boolean {
    if (answer.bytes > this.options.maxBytes || this.options.maxEntries === 0) return false;
    const now = this.sinceEpoch(this.now());
    // Expired entries leave as soon as a write sees them at the front (least recently used first),
    // not only when the bounds push them out: a short-lived window (COALESCE_LINGER_MS) must not keep
    // up to maxEntries dead answers alive, which made them old-generation garbage.
    const idle = this.graceMs > 0 ? this.idleCount() : 0;
    // By key (an entry pair per step is an array each).
    for (const oldKey of this.entries.keys()) {
      const oldEntry = this.entries.get(oldKey) as Entry;
      if (this.live(oldEntry, now, idle)) break;
      this.delete(oldKey, oldEntry);
    }
    const existing = this.entries.get(key);
    if (existing !== undefined) this.delete(key, existing);
    const { head, body, usage } = answer;
    const values = valuesOf(head.headers);
    const model = answer.model === this.lastModel ? this.lastModel : (this.lastModel = answer.model);
    const valuesBytes = values !== undefined && this.options.valuesInBytes === true ? bytesOfValues(values) : 0;
    const both = valuesBytes > 0 ? inBytes(values as readonly string[], valuesBytes, body) : undefined;
    this.entries.set(key, {
      status: int(head.status),
      eventStream: head.eventStream,
      headers: both === undefined ? (values ?? head.headers) : undefined,
      names: values === undefined ? undefined : this.namesOf(head.headers),
      upstream: head.upstream,
      body: both ?? keptBody(body),
      bodyAt: both === undefined ? 0 : valuesBytes,
      bytes: int(answer.bytes),
      input: usage === undefined ? NO_USAGE : int(usage.input),
      output: usage === undefined ? 0 : int(usage.output),
      cacheCreation: usage === undefined ? 0 : int(usage.cache_creation),
      cacheRead: usage === undefined ? 0 : int(usage.cache_read),
      model,
      expiresAt: int(now + this.options.ttlMs),
      idleAtSet: idle,
    });
    this.bytes += answer.bytes;
    // Checked before the walk too: a cache within its bounds makes no key iterator.
    if (this.withinBounds()) return true;
    for (const oldKey of this.entries.keys()) {
      if (this.withinBounds()) break;
      this.delete(oldKey, this.entries.get(oldKey) as Entry);
    }
    return true;
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
    return this.graceMs > 0 && now < entry.expiresAt + this.graceMs && (idle ?? this.idleCount()) === entry.idleAtSet;
  }

  private delete(key: string, entry: Entry): void {
    entry.headers = undefined;
    entry.names = undefined;
    entry.body = undefined;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}

/** Bodies at most this long are copied into node's shared Buffer pool (Buffer.allocUnsafe pools below half its size). */
const POOLED_BODY_BYTES = Buffer.poolSize >>> 1;
/** Bodies of several chunks at most this long are joined into one Buffer: a bounded copy (about a microsecond per 10 KB). */
const JOINED_BODY_BYTES = 64 * 1024;

/**
 * The body as an entry keeps it. The flight's chunks are views of the upstream socket's reads: each
 * holds an ArrayBuffer of its own (the whole read: head and body), which lives as long as the entry,
 * reaches the old generation with it, and is swept one by one in the pause that ends each
 * mark-compact (measured with `CACHE=on` at 1,000 req/s: 1.5-1.8 ms of a 3.9-5.5 ms pause, issue 30).
 * A small body is copied into node's shared Buffer pool instead (one pooled ArrayBuffer for many
 * entries; the socket's read dies young), and a few chunks into one Buffer; a large body is kept as
 * the flight retained it (a copy would stall the loop, and its ArrayBuffers are few for its bytes).
 */
function keptBody(body: readonly Buffer[]): Buffer | readonly Buffer[] {
  if (body.length === 0) return body;
  const bytes = lengthOf(body);
  if (bytes <= POOLED_BODY_BYTES || (body.length > 1 && bytes <= JOINED_BODY_BYTES)) return joined(Buffer.allocUnsafe(bytes), 0, body);
  return body.length === 1 ? (body[0] as Buffer) : body;
}

/** The chunks' bytes in all. */
function lengthOf(body: readonly Buffer[]): number {
  let bytes = 0;
  for (let i = 0; i < body.length; i++) bytes += (body[i] as Buffer).length;
  return bytes;
}

/** `into`, with the chunks copied one after the other from `at` on (it has room for them). */
function joined(into: Buffer, at: number, body: readonly Buffer[]): Buffer {
  for (let i = 0; i < body.length; i++) at += (body[i] as Buffer).copy(into, at);
  return into;
}

/** Bytes before each value kept in bytes: its length (so any value, empty or not, reads back exactly). */
const VALUE_LENGTH_BYTES = 2;

/**
 * The header values and the body in one Buffer from node's shared pool: each value as its length
 * (two bytes) and its latin1 bytes, then the body. Undefined when they do not fit in a pooled Buffer
 * or a value is not latin1 (every value read from an upstream is: upstream/headers.ts reads them so;
 * a value made here may not be) or is longer than two bytes can say: those are kept as strings.
 */
function inBytes(values: readonly string[], valuesBytes: number, body: readonly Buffer[]): Buffer | undefined {
  const bytes = valuesBytes + lengthOf(body);
  if (bytes > POOLED_BODY_BYTES) return undefined;
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as string;
    if (value.length > 0xffff) return undefined;
    for (let c = 0; c < value.length; c++) if (value.charCodeAt(c) > 0xff) return undefined;
  }
  const kept = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as string;
    at = kept.writeUInt16LE(value.length, at);
    at += kept.write(value, at, 'latin1');
  }
  return joined(kept, at, body);
}

/** The bytes `inBytes` gives the values (where the body starts); 0 only for no values. */
function bytesOfValues(values: readonly string[]): number {
  let bytes = 0;
  for (let i = 0; i < values.length; i++) bytes += VALUE_LENGTH_BYTES + (values[i] as string).length;
  return bytes;
}

/** The `count` header values `inBytes` kept in front of the body. */
function valuesFromBytes(kept: Buffer, count: number): string[] {
  const values = new Array<string>(count);
  for (let i = 0, at = 0; i < count; i++) {
    const length = kept.readUInt16LE(at);
    at += VALUE_LENGTH_BYTES;
    values[i] = kept.toString('latin1', at, at + length);
    at += length;
  }
  return values;
}

/** A live entry as the answer it keeps (a new head and body list per hit; the bytes are the entry's own). */
function answerOf(entry: Entry): CachedAnswer {
  const { headers, names, upstream, bodyAt } = entry;
  let body = entry.body;
  // Values kept in bytes come first in the body's Buffer (`inBytes`: always with their names).
  if (bodyAt > 0 && Buffer.isBuffer(body) && names !== undefined) {
    const values = valuesFromBytes(body, names.length);
    body = body.subarray(bodyAt);
    return answerWith(entry, unpackHeaders({ names, values }), upstream, body);
  }
  // Packed values always come with their names (set together, emptied together).
  const list = names === undefined ? (headers ?? []) : unpackHeaders({ names, values: headers as readonly string[] });
  return answerWith(entry, list, upstream, body);
}

/** The answer of an entry, given its header list and its body. */
function answerWith(entry: Entry, list: FlightHead['headers'], upstream: string | undefined, body: Buffer | readonly Buffer[] | undefined): CachedAnswer {
  // `upstream` only when there is one: the head has the shape it was set with.
  const head: FlightHead = upstream === undefined ? { status: entry.status, headers: list, eventStream: entry.eventStream } : { status: entry.status, headers: list, eventStream: entry.eventStream, upstream };
  return {
    head,
    body: body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body,
    bytes: entry.bytes,
    usage: entry.input === NO_USAGE ? undefined : { input: entry.input, output: entry.output, cache_creation: entry.cacheCreation, cache_read: entry.cacheRead },
    model: entry.model,
  };
}
