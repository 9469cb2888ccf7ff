/**
 * In-place edits of a request body's top-level JSON object: read a top-level string or boolean,
 * remove top-level keys, set or insert a top-level key with raw JSON text. Every byte outside the
 * edited members is kept as it was (nested values, unknown fields, key order, number spelling,
 * escapes, thinking signatures), which re-serialising a parsed object could not promise.
 *
 * A request body has already passed the gateway's validating scanner (src/core/json-scan.ts) on the
 * way in; this module only needs to find member boundaries, and says `undefined` (not translatable)
 * for anything that is not a well-formed object rather than guessing. The usage meter also reads a
 * plain upstream answer's members here (upstream/usage.ts); answers are not validated, and a value
 * malformed inside (`[1 2]`) is skipped by its brackets rather than refused. Where JSON.parse would take
 * the last of duplicate keys, so do reads here, and edits remove every duplicate.
 */

import { plainRunEnd } from '../../core/json-scan.js';

/** One top-level member: byte offsets into the body. */
interface Member {
  /** The key, decoded. */
  readonly key: string;
  /** Offset of the key's opening quote. */
  readonly start: number;
  /** Offset of the value's first byte. */
  readonly valueStart: number;
  /** Offset just past the value's last byte. */
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWhitespace(body: Buffer, i: number): number {
  while (i < body.length && isWhitespace(body[i])) i++;
  return i;
}

/** Offset just past the string whose opening quote is at `i`; -1 when it never closes. Plain runs are skipped a word at a time. */
function skipString(body: Buffer, i: number): number {
  i++;
  for (;;) {
    i = plainRunEnd(body, i, body.length);
    if (i >= body.length) return -1;
    const c = body[i];
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1; // an escape pair, or a raw control character stepped over
  }
}

/** Offset just past the value starting at `i` (any JSON value); -1 when it is cut or unbalanced. */
function skipValue(body: Buffer, i: number): number {
  const c = body[i];
  if (c === QUOTE) return skipString(body, i);
  if (c === 0x7b || c === 0x5b) {
    // Brackets are balanced by depth; strings are skipped whole so their brackets do not count.
    let depth = 0;
    while (i < body.length) {
      const d = body[i] as number;
      if (d === QUOTE) {
        i = skipString(body, i);
        if (i < 0) return -1;
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // Numbers and literals end at the first delimiter.
  const from = i;
  while (i < body.length) {
    const d = body[i];
    if (d === 0x2c || d === 0x7d || d === 0x5d || isWhitespace(d)) break;
    i++;
  }
  return i > from ? i : -1;
}

function decodeKey(raw: Buffer): string | undefined {
  // Keys without escapes are their bytes; others are decoded exactly as JSON.parse would.
  if (!raw.includes(BACKSLASH)) return raw.toString('utf8');
  try {
    return JSON.parse(`"${raw.toString('utf8')}"`) as string;
  } catch {
    return undefined;
  }
}

/**
 * Walks the members of `body`'s top-level object without building anything: `visit` gets each
 * member's offsets in order (the key's raw bytes inside its quotes, escapes not decoded; the value's
 * first byte and the offset just past its last). Returns the offset of the closing brace, or -1 when
 * the body is not one well-formed JSON object (the members visited until then mean nothing).
 */
export function forEachMember(body: Buffer, visit: (keyStart: number, keyEnd: number, valueStart: number, end: number) => void): number {
  let i = skipWhitespace(body, 0);
  if (body[i] !== 0x7b) return -1;
  i = skipWhitespace(body, i + 1);
  if (body[i] === 0x7d) return wholeBodyEnds(body, i);
  for (;;) {
    if (body[i] !== QUOTE) return -1;
    const keyEnd = skipString(body, i);
    if (keyEnd < 0) return -1;
    const keyStart = i + 1;
    i = skipWhitespace(body, keyEnd);
    if (body[i] !== 0x3a) return -1;
    const valueStart = skipWhitespace(body, i + 1);
    const end = skipValue(body, valueStart);
    if (end < 0) return -1;
    visit(keyStart, keyEnd - 1, valueStart, end);
    i = skipWhitespace(body, end);
    if (body[i] === 0x2c) {
      i = skipWhitespace(body, i + 1);
      continue;
    }
    if (body[i] === 0x7d) return wholeBodyEnds(body, i);
    return -1;
  }
}

/** `close` when only whitespace follows the closing brace at `close`, else -1. */
function wholeBodyEnds(body: Buffer, close: number): number {
  return skipWhitespace(body, close + 1) === body.length ? close : -1;
}

/** Whether the raw key bytes at [start, end) are exactly `name` (ASCII; a key with an escape never is: callers decode those). */
export function keyIs(body: Buffer, start: number, end: number, name: string): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (body[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/** Whether the bytes at [start, end) hold a backslash (an escaped key or string). */
export function hasEscape(body: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (body[i] === BACKSLASH) return true;
  return false;
}

/** The JSON string value at [start, end) decoded (as JSON.parse would), or undefined when the value is not a string. */
export function stringAt(body: Buffer, start: number, end: number): string | undefined {
  if (body[start] !== QUOTE) return undefined;
  if (!hasEscape(body, start, end)) return body.toString('utf8', start + 1, end - 1);
  try {
    return JSON.parse(body.toString('utf8', start, end)) as string;
  } catch {
    return undefined;
  }
}

/**
 * A body's top-level object, its members located once; reads and edits work from these offsets.
 * Immutable: `edit` returns a new buffer and leaves this one as it was.
 */
export class TopLevelObject {
  private constructor(
    readonly body: Buffer,
    private readonly members: readonly Member[],
    /** Offset just past the opening brace. */
    private readonly open: number,
    /** Offset of the closing brace. */
    private readonly close: number,
  ) {}

  /** Locates the members of `body`'s top-level object; undefined when the body is not one well-formed JSON object. */
  static parse(body: Buffer): TopLevelObject | undefined {
    const members: Member[] = [];
    let keysDecoded = true as boolean; // set in the walk's callback
    const close = forEachMember(body, (keyStart, keyEnd, valueStart, end) => {
      const key = keysDecoded ? decodeKey(body.subarray(keyStart, keyEnd)) : undefined;
      if (key === undefined) keysDecoded = false;
      else members.push({ key, start: keyStart - 1, valueStart, end });
    });
    if (close < 0 || !keysDecoded) return undefined;
    return new TopLevelObject(body, members, skipWhitespace(body, 0) + 1, close);
  }

  /** Whether the object has the key at all. */
  has(key: string): boolean {
    return this.last(key) !== undefined;
  }

  /** The raw JSON text of the key's value (the last duplicate), or undefined. */
  raw(key: string): Buffer | undefined {
    const m = this.last(key);
    return m === undefined ? undefined : this.body.subarray(m.valueStart, m.end);
  }

  /** The key's value when it is a string (the last duplicate wins, as in JSON.parse), else undefined. */
  string(key: string): string | undefined {
    const m = this.last(key);
    return m === undefined ? undefined : stringAt(this.body, m.valueStart, m.end);
  }

  /** The key's value when it is `true` or `false`, else undefined. */
  bool(key: string): boolean | undefined {
    const raw = this.raw(key)?.toString('latin1');
    return raw === 'true' ? true : raw === 'false' ? false : undefined;
  }

  /**
   * A new body: every member named in `remove` dropped (duplicates too); each key of `set` given
   * its raw JSON value, in place of its last occurrence (earlier duplicates dropped), or inserted
   * right after the opening brace when absent. Raw values are trusted to be valid JSON text.
   */
  edit(changes: { remove?: readonly string[]; set?: Readonly<Record<string, string>> }): Buffer {
    const remove = new Set(changes.remove ?? []);
    const set = changes.set ?? {};
    const parts: Buffer[] = [];
    const inserted: string[] = [];
    for (const key of Object.keys(set)) {
      if (!this.has(key)) inserted.push(`${JSON.stringify(key)}:${set[key] as string}`);
    }
    parts.push(this.body.subarray(0, this.open));
    const first = this.members[0];
    if (first !== undefined) parts.push(this.body.subarray(this.open, first.start)); // whitespace after the brace
    if (inserted.length > 0) parts.push(Buffer.from(inserted.join(',')));
    let kept = inserted.length > 0;
    let previous: Member | undefined;
    for (const m of this.members) {
      const lastOfKey = this.last(m.key) === m;
      const replaced = Object.hasOwn(set, m.key);
      const dropped = remove.has(m.key) || (replaced && !lastOfKey);
      if (!dropped) {
        // Separator: the original text between this member and the one before it (the comma and
        // its whitespace); none before the first member kept, a bare comma after an insertion.
        if (previous !== undefined && kept) parts.push(this.body.subarray(previous.end, m.start));
        else if (kept) parts.push(Buffer.from(','));
        if (replaced) {
          parts.push(this.body.subarray(m.start, m.valueStart), Buffer.from(set[m.key] as string));
        } else parts.push(this.body.subarray(m.start, m.end));
        kept = true;
      }
      previous = m;
    }
    const tailFrom = this.members.length > 0 ? (this.members[this.members.length - 1] as Member).end : this.open;
    parts.push(this.body.subarray(kept || this.members.length === 0 ? tailFrom : this.close, this.body.length));
    return Buffer.concat(parts);
  }

  private last(key: string): Member | undefined {
    for (let i = this.members.length - 1; i >= 0; i--) {
      const m = this.members[i] as Member;
      if (m.key === key) return m;
    }
    return undefined;
  }
}
