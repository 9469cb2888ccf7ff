/**
 * A validating JSON scanner fed chunk by chunk as a request body arrives: it checks the grammar
 * (RFC 8259), bounds the nesting depth, and picks out the top-level `"model"` string, without
 * building any value. Why not JSON.parse: the gateway needs nothing from the body but `model`,
 * and JSON.parse of one legal 32 MiB object with millions of keys blocks the event loop for
 * seconds (measured: benchmarks/big-body.ts), while this scan costs a few milliseconds per
 * megabyte, spread over the body's chunks.
 *
 * Invariants: every byte is looked at once, in order; the state between chunks is the few fields
 * below (no chunk is kept, except at most MAX_CAPTURE bytes of a top-level key or model value).
 * UTF-8 inside strings is not validated (JSON.parse of the decoded text did not either: invalid
 * sequences became U+FFFD). Where JSON.parse would take the last of duplicate keys, so does this.
 *
 * The cache-prefix tap (constructed with `tapCachePrefix`): in the same pass, the bytes of the
 * top-level `tools` and `system` values are fed to a SHA-256 as they go by (sliced from the chunk,
 * never copied or decoded), and the keys inside them are checked for `cache_control` (and a
 * `"ttl": "1h"`). The result's `cachePrefix` is that digest when tools or system carry a breakpoint:
 * the identity of the prompt's cached head (pipeline/affinity/). A key split across chunks is
 * recognised through the few bytes kept of it; keys spelled with escapes are not (such a request
 * simply has no identity). Nothing is parsed: no JSON.parse, no value built (test/unit/cache-prefix.test.ts).
 */

import { createHash, type Hash } from 'node:crypto';

// States. VALUE expects any value; ARRAY_FIRST a value or `]`; OBJECT_FIRST a key or `}`; KEY a key;
// COLON `:`; AFTER `,` or a closer; END only whitespace. Numbers, strings and literals have their own.
const VALUE = 0;
const ARRAY_FIRST = 1;
const OBJECT_FIRST = 2;
const KEY = 3;
const COLON = 4;
const AFTER = 5;
const END = 6;
const STRING = 7;
const ESCAPE = 8;
const UNICODE = 9;
const MINUS = 10;
const ZERO = 11;
const INT = 12;
const DOT = 13;
const FRAC = 14;
const EXP = 15;
const EXP_SIGN = 16;
const EXP_DIGITS = 17;
const LITERAL = 18;

const OBJECT = 1;
const ARRAY = 2;

/** Longest top-level key or `model` value kept for decoding; longer ones cannot be `model` / a label. */
const MAX_CAPTURE = 1024;

const LITERALS: Record<number, Uint8Array> = {
  0x74: Buffer.from('rue'), // t
  0x66: Buffer.from('alse'), // f
  0x6e: Buffer.from('ull'), // n
};

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Numbers end at the first byte that cannot continue them; these states may end there. */
function numberMayEnd(state: number): boolean {
  return state === ZERO || state === INT || state === FRAC || state === EXP_DIGITS;
}

/** Open containers whose kinds are bits of one number; deeper ones are kept in a list made on first use. */
const BIT_DEPTH = 31;
/** Deeper open containers tracked before that list first grows. */
const INITIAL_STACK = 32;

/** Runs this long (in 4-byte words) are scanned a word at a time; shorter ones byte by byte. */
const MIN_WORDS = 8;

/** Memory up to this size keeps its word view for the next call; larger memory gets a view per call. */
const MAX_CACHED_VIEW_BYTES = 1 << 20;
let viewedMemory: ArrayBufferLike | undefined;
let viewedWords: Uint32Array = new Uint32Array(0);

/**
 * Whole-word view of `memory`. The last one (of memory up to 1 MiB, so at most that much is kept
 * alive) is reused: a request scans many strings in the same memory (socket reads, Buffer's pool
 * slab), and a typed array per string was the scan's largest allocation.
 */
function wordsOf(memory: ArrayBufferLike): Uint32Array {
  // The length check covers memory that was resized (a resizable ArrayBuffer) since it was viewed.
  if (memory === viewedMemory && viewedWords.length === memory.byteLength >> 2) return viewedWords;
  const words = new Uint32Array(memory, 0, memory.byteLength >> 2);
  if (memory.byteLength <= MAX_CACHED_VIEW_BYTES) {
    viewedMemory = memory;
    viewedWords = words;
  }
  return words;
}

/**
 * The first index in [from, end) holding a byte that ends a run of plain string bytes: `"`, `\`
 * or a control character (below 0x20); `end` when there is none. Long runs are read four bytes at a
 * time (SWAR): a word is tested at once for a byte equal to 0x22 or 0x5c (the has-zero test on the
 * word XORed with the byte repeated) or below 0x20 (the has-less-than test), both exact about
 * whether such a byte exists; the byte loop then finds which. About 4x faster than a byte loop on a
 * megabyte prompt, and the same answer for every input (test/unit/json-scan.test.ts compares them).
 */
export function plainRunEnd(chunk: Uint8Array, from: number, end: number): number {
  let j = from;
  const offset = chunk.byteOffset;
  // Byte by byte up to a 4-byte boundary of the underlying memory (a typed view must be aligned).
  while (j < end && ((offset + j) & 3) !== 0) {
    const d = chunk[j] as number;
    if (d === 0x22 || d === 0x5c || d < 0x20) return j;
    j++;
  }
  const words = (end - j) >> 2;
  if (words >= MIN_WORDS) {
    const view = wordsOf(chunk.buffer);
    const first = (offset + j) >> 2;
    let w = 0;
    for (; w < words; w++) {
      const x = view[first + w] as number;
      const quote = x ^ 0x22222222;
      const backslash = x ^ 0x5c5c5c5c;
      if ((((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash) | ((x - 0x20202020) & ~x)) & 0x80808080) break;
    }
    j += w * 4;
  }
  for (; j < end; j++) {
    const d = chunk[j] as number;
    if (d === 0x22 || d === 0x5c || d < 0x20) return j;
  }
  return end;
}

/** The identity of a request's cached head: a digest of its `tools` and `system` values, when they carry a breakpoint. */
export interface CachePrefix {
  /** SHA-256 (base64url) of the top-level `tools` and `system` values' bytes, each after a marker naming it. */
  readonly digest: string;
  /** A breakpoint in them asked for the 1-hour TTL. */
  readonly ttl1h: boolean;
}

export type ScanResult = { ok: true; model: string | undefined; cachePrefix?: CachePrefix | undefined } | { ok: false; problem: string };

// The top-level sections the cache-prefix tap hashes.
const NO_SECTION = 0;
const TOOLS = 1;
const SYSTEM = 2;
const SECTION_MARKERS: Record<number, Buffer> = { [TOOLS]: Buffer.from('\0tools\0'), [SYSTEM]: Buffer.from('\0system\0') };
const CACHE_CONTROL = Buffer.from('cache_control');

// The top-level keys the scan looks for, as read (a key read without escapes is compared as bytes: no string).
const KEY_UNREAD = -1;
/** The empty list of captured pieces (never written: the first piece replaces it). */
const NO_PIECES: readonly Buffer[] = Object.freeze([]);
const KEY_OTHER = 0;
const KEY_MODEL = 1;
const KEY_TOOLS = 2;
const KEY_SYSTEM = 3;
const MODEL_BYTES = Buffer.from('model');
const TOOLS_BYTES = Buffer.from('tools');
const SYSTEM_BYTES = Buffer.from('system');

/** Whether chunk[from, to) is `word`. */
function isWord(chunk: Buffer, from: number, to: number, word: Buffer): boolean {
  return to - from === word.length && endsWith(chunk, to, word);
}

function keyOfBytes(chunk: Buffer, from: number, to: number): number {
  return isWord(chunk, from, to, MODEL_BYTES) ? KEY_MODEL : isWord(chunk, from, to, TOOLS_BYTES) ? KEY_TOOLS : isWord(chunk, from, to, SYSTEM_BYTES) ? KEY_SYSTEM : KEY_OTHER;
}

function keyOfText(key: string | undefined): number {
  return key === 'model' ? KEY_MODEL : key === 'tools' ? KEY_TOOLS : key === 'system' ? KEY_SYSTEM : KEY_OTHER;
}
const TTL = Buffer.from('ttl');
const ONE_HOUR = Buffer.from('1h');

/** Whether chunk[end - word.length, end) is `word`. */
function endsWith(chunk: Buffer, end: number, word: Buffer): boolean {
  const from = end - word.length;
  if (from < 0) return false;
  for (let k = 0; k < word.length; k++) if (chunk[from + k] !== word[k]) return false;
  return true;
}

export class JsonScanner {
  private state = VALUE;
  private depth = 0;
  /**
   * Kinds of the open containers: bit d set for an array at depth d (below BIT_DEPTH), then `deep`,
   * grown on demand up to maxDepth (most requests nest a few levels: no list at all).
   */
  private kinds = 0;
  private deep: Uint8Array | undefined;
  /** Bytes seen before the current chunk (for error positions). */
  private offset = 0;
  private problem: string | undefined;
  // The string being read: a key or a value; whether its bytes are captured.
  private stringIsKey = false;
  private capturing = false;
  /** The pieces of a captured string that spans chunks (the shared empty list until the first piece). */
  private captured: Buffer[] = NO_PIECES as Buffer[];
  private capturedBytes = 0;
  /** The captured string's raw text when it lay whole in one chunk (read straight from it: no copies). */
  private capturedWhole: string | undefined;
  private captureOverflow = false;
  /** The captured key, when it was read as bytes (KEY_UNREAD: read its text). */
  private keyRead = KEY_UNREAD;
  /** The current string holds escapes (its captured bytes need decoding). */
  private hasEscapes = false;
  private unicodeLeft = 0;
  private literal: Uint8Array = LITERALS[0x74] as Uint8Array;
  private literalAt = 0;
  /** The last top-level key read was "model". */
  private keyIsModel = false;
  private model: string | undefined;
  // The cache-prefix tap: the top-level key just read, the section being hashed, what was seen in it.
  private topKey = NO_SECTION;
  private section = NO_SECTION;
  private prefixHash: Hash | undefined;
  /** Where the current string's bytes began (absolute offset). */
  private stringStartAt = 0;
  private headMarked = false;
  private expectTtl = false;
  private ttl1h = false;
  /** The first bytes of a short string inside a tapped section that goes on in the next chunk. */
  private partial: Buffer | undefined;

  constructor(
    private readonly maxDepth: number,
    private readonly tapCachePrefix = false,
  ) {}

  push(chunk: Buffer): void {
    if (this.problem !== undefined) return;
    let state = this.state;
    let captureFrom = 0;
    /** Start of the tapped section's bytes in this chunk. */
    let sectionFrom = 0;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const c = chunk[i] as number;
      switch (state) {
        case STRING: {
          // Fast path: plain string bytes (a prompt is mostly one long string).
          const j = plainRunEnd(chunk, i, n);
          i = j;
          if (j === n) continue;
          const d = chunk[j] as number;
          if (d === 0x22) {
            if (this.capturing) this.captureEnd(chunk, captureFrom, j);
            if (this.section !== NO_SECTION) this.noteString(chunk, j);
            state = this.endString();
          } else if (d === 0x5c) {
            this.hasEscapes = true;
            state = ESCAPE;
          } else return this.fail(j, 'a control character inside a string');
          i++;
          continue;
        }
        case ESCAPE:
          if (c === 0x75) {
            state = UNICODE;
            this.unicodeLeft = 4;
          } else if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) state = STRING;
          else return this.fail(i, 'an invalid escape sequence');
          i++;
          continue;
        case UNICODE:
          if (!isHex(c)) return this.fail(i, 'an invalid \\u escape');
          if (--this.unicodeLeft === 0) state = STRING;
          i++;
          continue;
        case LITERAL:
          if (c !== this.literal[this.literalAt]) return this.fail(i, 'an invalid literal');
          if (++this.literalAt === this.literal.length) state = this.afterValue();
          i++;
          continue;
        case MINUS:
          if (c === 0x30) state = ZERO;
          else if (isDigit(c)) state = INT;
          else return this.fail(i, 'a digit expected after -');
          i++;
          continue;
        case ZERO:
        case INT:
        case FRAC:
        case EXP_DIGITS:
          if (isDigit(c) && state !== ZERO) {
            i++;
            continue;
          }
          if (c === 0x2e && (state === ZERO || state === INT)) {
            state = DOT;
            i++;
            continue;
          }
          if ((c === 0x65 || c === 0x45) && state !== EXP_DIGITS) {
            state = EXP;
            i++;
            continue;
          }
          // The number ended; this byte belongs to what follows it (not consumed).
          state = this.afterValue();
          continue;
        case DOT:
          if (!isDigit(c)) return this.fail(i, 'a digit expected after .');
          state = FRAC;
          i++;
          continue;
        case EXP:
          if (c === 0x2b || c === 0x2d) state = EXP_SIGN;
          else if (isDigit(c)) state = EXP_DIGITS;
          else return this.fail(i, 'an invalid exponent');
          i++;
          continue;
        case EXP_SIGN:
          if (!isDigit(c)) return this.fail(i, 'an invalid exponent');
          state = EXP_DIGITS;
          i++;
          continue;
      }
      // Structural states: whitespace is allowed between tokens.
      if (isWhitespace(c)) {
        i++;
        continue;
      }
      switch (state) {
        case VALUE:
        case ARRAY_FIRST:
          if (c === 0x22) {
            state = this.beginString(false);
            captureFrom = i + 1;
            this.stringStartAt = this.offset + captureFrom;
          } else if (c === 0x7b) {
            if (!this.open(OBJECT)) return this.fail(i, `nesting deeper than ${this.maxDepth} levels`);
            state = OBJECT_FIRST;
          } else if (c === 0x5b) {
            if (!this.open(ARRAY)) return this.fail(i, `nesting deeper than ${this.maxDepth} levels`);
            state = ARRAY_FIRST;
          } else if (c === 0x2d) state = MINUS;
          else if (c === 0x30) state = ZERO;
          else if (isDigit(c)) state = INT;
          else if (LITERALS[c] !== undefined) {
            this.literal = LITERALS[c];
            this.literalAt = 0;
            state = LITERAL;
          } else if (c === 0x5d && state === ARRAY_FIRST) {
            this.depth--;
            state = this.afterValue();
          } else return this.fail(i, 'a value expected');
          break;
        case OBJECT_FIRST:
        case KEY:
          if (c === 0x22) {
            state = this.beginString(true);
            captureFrom = i + 1;
            this.stringStartAt = this.offset + captureFrom;
          } else if (c === 0x7d && state === OBJECT_FIRST) {
            this.depth--;
            state = this.afterValue();
          } else return this.fail(i, 'a key expected');
          break;
        case COLON:
          if (c !== 0x3a) return this.fail(i, ': expected');
          // A later top-level "model" replaces an earlier one, whatever its value is.
          if (this.keyIsModel) this.model = undefined;
          if (this.tapCachePrefix && this.depth === 1 && this.topKey !== NO_SECTION) {
            this.section = this.topKey;
            this.prefixHash ??= createHash('sha256');
            this.prefixHash.update(SECTION_MARKERS[this.section] as Buffer);
            sectionFrom = i + 1;
          }
          state = VALUE;
          break;
        case AFTER: {
          // A top-level value ended: the tapped section's bytes end before this `,` or `}`.
          if (this.section !== NO_SECTION && this.depth === 1) {
            this.prefixHash?.update(chunk.subarray(sectionFrom, i));
            this.section = NO_SECTION;
          }
          const container = this.kindAt(this.depth - 1);
          if (c === 0x2c) state = container === OBJECT ? KEY : VALUE;
          else if ((c === 0x7d && container === OBJECT) || (c === 0x5d && container === ARRAY)) {
            this.depth--;
            state = this.afterValue();
          } else return this.fail(i, ', or a closing bracket expected');
          break;
        }
        case END:
          return this.fail(i, 'nothing expected after the value');
      }
      i++;
    }
    // A string that goes on in the next chunk: keep what this chunk held of it.
    if (this.capturing && (state === STRING || state === ESCAPE || state === UNICODE)) this.capture(chunk.subarray(captureFrom));
    if (this.section !== NO_SECTION) {
      this.prefixHash?.update(chunk.subarray(sectionFrom));
      if (state === STRING || state === ESCAPE || state === UNICODE) this.keepPartial(chunk, state);
    }
    this.state = state;
    this.offset += n;
  }

  /** The verdict once the body ended. */
  end(): ScanResult {
    if (this.problem !== undefined) return { ok: false, problem: this.problem };
    if (this.state === END || (this.depth === 0 && numberMayEnd(this.state))) {
      const cachePrefix = this.headMarked && this.prefixHash !== undefined ? { digest: this.prefixHash.digest('base64url'), ttl1h: this.ttl1h } : undefined;
      return { ok: true, model: this.model, cachePrefix };
    }
    return { ok: false, problem: 'unexpected end of input' };
  }

  private fail(at: number, what: string): void {
    this.problem = `${what} at position ${this.offset + at}`;
  }

  private open(kind: number): boolean {
    const depth = this.depth;
    if (depth >= this.maxDepth) return false;
    if (depth < BIT_DEPTH) {
      if (kind === ARRAY) this.kinds |= 1 << depth;
      else this.kinds &= ~(1 << depth);
    } else {
      const at = depth - BIT_DEPTH;
      let deep = this.deep;
      if (deep === undefined || at === deep.length) {
        const grown = new Uint8Array(deep === undefined ? INITIAL_STACK : Math.min(deep.length * 2, this.maxDepth));
        if (deep !== undefined) grown.set(deep);
        this.deep = deep = grown;
      }
      deep[at] = kind;
    }
    this.depth = depth + 1;
    return true;
  }

  /** The kind of the container open at `depth` (below this.depth). */
  private kindAt(depth: number): number {
    if (depth < BIT_DEPTH) return (this.kinds >>> depth) & 1 ? ARRAY : OBJECT;
    return (this.deep as Uint8Array)[depth - BIT_DEPTH] as number;
  }

  /** Directly inside a top-level object (depth 1, its container's bit clear): where `model`, `tools` and `system` are keys. */
  private inTopLevelObject(): boolean {
    return this.depth === 1 && (this.kinds & 1) === 0;
  }

  private afterValue(): number {
    return this.depth === 0 ? END : AFTER;
  }

  private beginString(isKey: boolean): number {
    this.stringIsKey = isKey;
    const topLevelObject = this.inTopLevelObject();
    // Captured: top-level keys (to spot "model") and the top-level model value.
    this.capturing = topLevelObject && (isKey || this.keyIsModel);
    // Most strings are not captured, and a captured one mostly lies in one chunk: a new list only after pieces.
    if (this.captured.length !== 0) this.captured = NO_PIECES as Buffer[];
    this.capturedBytes = 0;
    this.capturedWhole = undefined;
    this.keyRead = KEY_UNREAD;
    this.captureOverflow = false;
    this.hasEscapes = false;
    return STRING;
  }

  /**
   * The captured string's last bytes, `chunk[from, to)`. When nothing of it came in an earlier chunk
   * its text is read straight from this one (the same UTF-8 decoding as of the pieces joined).
   */
  private captureEnd(chunk: Buffer, from: number, to: number): void {
    if (this.captureOverflow) return;
    if (this.capturedBytes !== 0) {
      this.capture(chunk.subarray(from, to));
      return;
    }
    if (to - from > MAX_CAPTURE) {
      this.captureOverflow = true;
      return;
    }
    // A key without escapes is what its bytes say: compared as they lie, no string made.
    if (this.stringIsKey && !this.hasEscapes) {
      this.keyRead = keyOfBytes(chunk, from, to);
      return;
    }
    this.capturedWhole = chunk.toString('utf8', from, to);
  }

  private capture(bytes: Buffer): void {
    if (this.captureOverflow) return;
    if (this.capturedBytes + bytes.length > MAX_CAPTURE) {
      this.captureOverflow = true;
      this.captured = NO_PIECES as Buffer[];
      return;
    }
    // Copied: the chunk may be reused by the caller after push returns.
    if (this.captured.length === 0) this.captured = [Buffer.from(bytes)];
    else this.captured.push(Buffer.from(bytes));
    this.capturedBytes += bytes.length;
  }

  /** The captured string's value (escapes decoded; its grammar was checked), or undefined past MAX_CAPTURE. */
  private capturedText(): string | undefined {
    if (this.captureOverflow) return undefined;
    const raw = this.capturedWhole ?? Buffer.concat(this.captured, this.capturedBytes).toString('utf8');
    return this.hasEscapes ? (JSON.parse(`"${raw}"`) as string) : raw;
  }

  /**
   * Inside a tapped section: a `cache_control` key marks the head as cached, a `"ttl": "1h"` asks for
   * the hour. `j` is the closing quote. A short string that began in an earlier chunk is compared
   * through the bytes kept of it (`partial`); strings with escapes are not recognised.
   */
  private noteString(chunk: Buffer, j: number): void {
    const length = this.offset + j - this.stringStartAt;
    const inChunk = this.stringStartAt >= this.offset;
    const partial = this.partial;
    this.partial = undefined;
    const is = (word: Buffer): boolean => {
      if (this.hasEscapes || length !== word.length) return false;
      if (inChunk) return endsWith(chunk, j, word);
      return partial !== undefined && endsWith(Buffer.concat([partial, chunk.subarray(0, j)]), length, word);
    };
    if (this.stringIsKey) {
      if (is(CACHE_CONTROL)) this.headMarked = true;
      this.expectTtl = is(TTL);
    } else {
      if (this.expectTtl && is(ONE_HOUR)) this.ttl1h = true;
      this.expectTtl = false;
    }
  }

  /** At a chunk's end inside a tapped section's string: keep its bytes while it may still be a word noteString looks for. */
  private keepPartial(chunk: Buffer, state: number): void {
    const soFar = this.offset + chunk.length - this.stringStartAt;
    if (state !== STRING || this.hasEscapes || soFar > CACHE_CONTROL.length) {
      this.partial = undefined;
      return;
    }
    const piece = chunk.subarray(Math.max(0, this.stringStartAt - this.offset));
    this.partial = this.stringStartAt < this.offset && this.partial !== undefined ? Buffer.concat([this.partial, piece]) : Buffer.from(piece);
  }

  private endString(): number {
    if (this.stringIsKey) {
      if (this.inTopLevelObject()) {
        const key = !this.capturing ? KEY_OTHER : this.keyRead !== KEY_UNREAD ? this.keyRead : keyOfText(this.capturedText());
        this.keyIsModel = key === KEY_MODEL;
        if (this.tapCachePrefix) this.topKey = key === KEY_TOOLS ? TOOLS : key === KEY_SYSTEM ? SYSTEM : NO_SECTION;
      }
      this.capturing = false;
      return COLON;
    }
    if (this.capturing) {
      // An over-long model value keeps a marker no label rule accepts, never a truncated id.
      this.model = this.capturedText() ?? '\u0000';
      this.capturing = false;
    }
    return this.afterValue();
  }
}
