import { plainRunEnd } from '../http/json-scan.js';

/**
 * Finds where the values of some top-level members of one JSON object lie, without building the
 * rest: the usage meter needs `id`, `model` and `usage` from a plain answer, and JSON.parse of the
 * whole answer (its content blocks are most of it) cost more than everything else the meter does.
 * String contents are skipped a word at a time (plainRunEnd); nested objects and arrays by depth.
 *
 * Returns undefined for anything it does not follow (not an object, a key with an escape, a
 * truncated text): the caller then parses the whole text. It checks the structure it walks, not
 * every value's grammar: a malformed value it skips (`[1 2]`) does not stop it, where JSON.parse
 * would have thrown and the meter read no usage at all. Duplicate keys: the last one wins, as with
 * JSON.parse.
 */
export function topLevelValues(text: Buffer, wanted: ReadonlySet<string>): Map<string, [start: number, end: number]> | undefined {
  const found = new Map<string, [number, number]>();
  const n = text.length;
  let i = skipWhitespace(text, 0);
  if (text[i] !== 0x7b) return undefined; // {
  i = skipWhitespace(text, i + 1);
  if (text[i] === 0x7d) return found; // }
  for (;;) {
    if (text[i] !== 0x22) return undefined; // "
    const keyStart = i + 1;
    const keyEnd = plainRunEnd(text, keyStart, n);
    if (text[keyEnd] !== 0x22) return undefined; // an escape or a control character in a key
    i = skipWhitespace(text, keyEnd + 1);
    if (text[i] !== 0x3a) return undefined; // :
    const valueStart = skipWhitespace(text, i + 1);
    const valueEnd = skipValue(text, valueStart);
    if (valueEnd < 0) return undefined;
    const key = text.toString('latin1', keyStart, keyEnd);
    if (wanted.has(key)) found.set(key, [valueStart, valueEnd]);
    i = skipWhitespace(text, valueEnd);
    if (text[i] === 0x7d) return found;
    if (text[i] !== 0x2c) return undefined; // ,
    i = skipWhitespace(text, i + 1);
  }
}

function skipWhitespace(text: Uint8Array, i: number): number {
  for (;;) {
    const c = text[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index just past the string whose opening quote is at `i - 1`, or -1 when it does not end. */
function skipStringBody(text: Uint8Array, i: number): number {
  const n = text.length;
  for (;;) {
    i = plainRunEnd(text, i, n);
    if (i >= n) return -1;
    const c = text[i];
    if (c === 0x22) return i + 1;
    if (c === 0x5c) i += 2; // the escaped byte (a \uXXXX's digits are plain bytes)
    else i++; // a raw control character: not JSON's, but not ours to police here
  }
}

/** The index just past the value starting at `i`, or -1 when it does not end inside the text. */
function skipValue(text: Uint8Array, i: number): number {
  const n = text.length;
  const first = text[i];
  if (first === undefined) return -1;
  if (first === 0x22) return skipStringBody(text, i + 1);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    while (i < n) {
      const c = text[i] as number;
      if (c === 0x22) {
        i = skipStringBody(text, i + 1);
        if (i < 0) return -1;
        continue;
      }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // A number or a literal: up to the next delimiter.
  while (i < n) {
    const c = text[i] as number;
    if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return i;
    i++;
  }
  return -1;
}
