import { keyIs } from './kinds/json-edit.js';

/** The token counts of an answer's `usage` object, as `JSON.parse` of it gives them (absent keys absent; a value that is not a number: null). */
export interface UsageCounts {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const ZERO = 0x30;
const NINE = 0x39;
/** Digits of an integer read in place: up to 15 are exact in a double. */
const MAX_DIGITS = 15;

function skipWhitespace(b: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** Offset of the closing quote of a string with no escape and no control character opening at `i`; -1 otherwise. */
function plainString(b: Buffer, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const c = b[j] as number;
    if (c === QUOTE) return j;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** Whether the bytes at `i` are `word` (a JSON literal). */
function literalAt(b: Buffer, i: number, end: number, word: string): boolean {
  return i + word.length <= end && keyIs(b, i, i + word.length, word);
}

/**
 * The offset just past the object opening at `i` when it is in the plain subset this module reads
 * (below), -1 otherwise; the four counts of a top-level object (`into`) recorded as they come, the
 * last of duplicate keys winning as in JSON.parse.
 */
function plainObject(b: Buffer, i: number, end: number, into: UsageCounts | undefined): number {
  if (b[i] !== OPEN) return -1;
  i = skipWhitespace(b, i + 1, end);
  if (b[i] === CLOSE) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const keyStart = i + 1;
    const keyEnd = plainString(b, i, end);
    if (keyEnd < 0) return -1;
    i = skipWhitespace(b, keyEnd + 1, end);
    if (b[i] !== COLON) return -1;
    i = skipWhitespace(b, i + 1, end);
    // The value: a plain string, a plain non-negative integer, a literal, or (at the top only) an object of the same.
    const c = b[i];
    let count: number | null = null;
    if (c === QUOTE) {
      const close = plainString(b, i, end);
      if (close < 0) return -1;
      i = close + 1;
    } else if (c !== undefined && c >= ZERO && c <= NINE) {
      let j = i;
      let n = 0;
      while (j < end && (b[j] as number) >= ZERO && (b[j] as number) <= NINE) n = n * 10 + ((b[j++] as number) - ZERO);
      const digits = j - i;
      // JSON has no leading zero; fractions, exponents and long integers are left to JSON.parse.
      if (digits > MAX_DIGITS || (c === ZERO && digits > 1) || b[j] === 0x2e || b[j] === 0x65 || b[j] === 0x45) return -1;
      count = n;
      i = j;
    } else if (literalAt(b, i, end, 'null')) i += 4;
    else if (literalAt(b, i, end, 'true')) i += 4;
    else if (literalAt(b, i, end, 'false')) i += 5;
    else if (c === OPEN && into !== undefined) {
      i = plainObject(b, i, end, undefined);
      if (i < 0) return -1;
    } else return -1;
    if (into !== undefined) record(into, b, keyStart, keyEnd, count);
    i = skipWhitespace(b, i, end);
    if (b[i] === COMMA) {
      i = skipWhitespace(b, i + 1, end);
      continue;
    }
    return b[i] === CLOSE ? i + 1 : -1;
  }
}

function record(into: UsageCounts, b: Buffer, keyStart: number, keyEnd: number, count: number | null): void {
  if (keyIs(b, keyStart, keyEnd, 'input_tokens')) into.input_tokens = count;
  else if (keyIs(b, keyStart, keyEnd, 'output_tokens')) into.output_tokens = count;
  else if (keyIs(b, keyStart, keyEnd, 'cache_creation_input_tokens')) into.cache_creation_input_tokens = count;
  else if (keyIs(b, keyStart, keyEnd, 'cache_read_input_tokens')) into.cache_read_input_tokens = count;
}

/**
 * The counts of the `usage` object at [start, end) of an answer, read in place: no string of it and
 * no parsed object. Only for the plain subset of JSON an upstream's usage is written in: keys and
 * strings without escapes, non-negative integers of at most 15 digits, literals, objects one level
 * deep, whitespace anywhere JSON allows it; all of it valid JSON, whose counts are what JSON.parse
 * reads. Anything else (an array, an escape, a fraction, a malformed value) is undefined: the
 * caller parses the text with JSON.parse, which decides as it always did (a malformed usage throws).
 */
export function plainUsage(b: Buffer, start: number, end: number): UsageCounts | undefined {
  const into: UsageCounts = {};
  const after = plainObject(b, skipWhitespace(b, start, end), end, into);
  return after >= 0 && skipWhitespace(b, after, end) === end ? into : undefined;
}
