import { headerNameToString } from './undici-parts.js';

/**
 * Header names of upstream answers as interned lower-case strings: a name seen before is that same
 * string again, found from its bytes without building one. undici's own lookup knows only well-known
 * names (content-type, date, ...); an Anthropic answer carries a dozen more on every call
 * (`anthropic-ratelimit-*`, `anthropic-organization-id`, ...), each otherwise read into a string and
 * lower-cased into another, per answer.
 *
 * Invariants:
 * - the result is always `headerNameToString(name)`'s value (the same characters; only identity differs);
 * - bounded: at most MAX_NAMES names of at most MAX_NAME_BYTES bytes are kept, the first ones seen (an
 *   upstream that sends ever new names fills the table once; later names are read as undici reads them);
 *   one name per hash slot: a colliding name is read as undici reads it, never mistaken for the other
 *   (the bytes are compared).
 */
const MAX_NAMES = 512;
const MAX_NAME_BYTES = 64;
const names = new Map<number, string>();

/** FNV-1a over the lower-cased bytes, kept in small-integer range (a Map key that allocates nothing). */
function hashOf(bytes: Buffer): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ lower(bytes[i] as number), 0x01000193);
  return hash & 0x3fffffff;
}

function lower(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

function sameName(name: string, bytes: Buffer): boolean {
  if (name.length !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (name.charCodeAt(i) !== lower(bytes[i] as number)) return false;
  return true;
}

/** The lower-case name of one raw header name (a Buffer from undici's parser, or a string). */
export function headerName(raw: Buffer | string): string {
  if (typeof raw === 'string' || raw.length > MAX_NAME_BYTES) return headerNameToString(raw);
  const hash = hashOf(raw);
  const known = names.get(hash);
  if (known !== undefined) return sameName(known, raw) ? known : headerNameToString(raw);
  const name = headerNameToString(raw);
  if (names.size < MAX_NAMES) names.set(hash, name);
  return name;
}
