import { headerName } from './header-names.js';
import { parseHeaders, type RawHeaderList } from './undici-parts.js';

/**
 * Header hygiene for both directions, in one place. Security intent: a client must not be able to
 * smuggle hop-by-hop semantics or gateway-control headers to the upstream, and the gateway decides
 * the upstream credential when it injects one.
 */

/** RFC 9110 §7.6.1 hop-by-hop headers plus proxy-only ones; never forwarded in either direction. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers the gateway sets itself. */
const REQUEST_OWNED = new Set(['host', 'content-length', 'accept-encoding', 'expect']);
const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key']);
const GATEWAY_PREFIX = 'x-gateway-';

/** Names listed in a `Connection` header are hop-by-hop for that message too. */
function connectionListed(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return undefined;
  // Nearly every message says only this: nothing to split.
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return undefined;
  const names = lower
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'close' && s !== 'keep-alive');
  return names.length > 0 ? new Set(names) : undefined;
}

export interface ForwardOptions {
  /** Removes every client credential header: the gateway holds the upstream credentials (each upstream's adapter adds its own). */
  dropCredentials?: boolean | undefined;
}

/**
 * Builds the upstream request headers from the client's raw header list (name/value pairs in
 * arrival order, as node gives them): end-to-end headers unchanged, duplicates preserved.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[], options: ForwardOptions = {}): string[] {
  let connection: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const sent = rawHeaders[i] as string;
    if (sent.length === 10 && lowerCaseName(sent) === 'connection') connection = rawHeaders[i + 1];
  }
  const listed = connectionListed(connection);
  // Sized once for every header, the gateway's accept-encoding and a content-length the caller may add; cut to what was kept.
  const out = new Array<string>(rawHeaders.length + ACCEPT_IDENTITY.length + 2);
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = lowerCaseName(rawHeaders[i] as string);
    if (HOP_BY_HOP.has(name) || REQUEST_OWNED.has(name) || name.startsWith(GATEWAY_PREFIX)) continue;
    if (listed?.has(name)) continue;
    if (options.dropCredentials === true && CREDENTIAL_HEADERS.has(name)) continue;
    out[n++] = name;
    out[n++] = rawHeaders[i + 1] as string;
  }
  for (const item of ACCEPT_IDENTITY) out[n++] = item;
  out.length = n;
  return out;
}

/**
 * A header name in lower case: the very string when it has no upper-case letter (toLowerCase makes a
 * copy even then, per header of every request).
 */
export function lowerCaseName(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c > 0x7f) return name.toLowerCase();
  }
  return name;
}

/**
 * The gateway's own `accept-encoding` on every upstream request (the client's never travels): the
 * gateway must read usage from every answer, and identity keeps that cheap. Upstream answers that are
 * compressed anyway are decoded in src/upstream/client.ts.
 */
export const ACCEPT_IDENTITY: readonly string[] = ['accept-encoding', 'identity'];

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** Response headers the gateway recomputes when it changes the body (decode or rewrite). */
const BODY_FRAMING = new Set(['content-length', 'content-encoding']);

/**
 * Upstream response headers to pass to the client, as an answer head's flat list (header-list.ts:
 * AnswerHeaders). `bodyChanged` drops framing headers that would
 * no longer describe the bytes the client receives. `x-gateway-*` is the gateway's own namespace
 * (role, upstream): an upstream's header of that kind never reaches a client, so the gateway's
 * headers are appended to the head, never merged into it.
 */
export function forwardResponseHeaders(headers: UpstreamHeaders, bodyChanged: boolean): (string | string[])[] {
  const listedRaw = headers.connection;
  const listed = connectionListed(Array.isArray(listedRaw) ? listedRaw.join(',') : listedRaw);
  const out: (string | string[])[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    if (bodyChanged && BODY_FRAMING.has(name)) continue;
    if (name.startsWith(GATEWAY_PREFIX)) continue;
    out.push(name, value);
  }
  return out;
}

/**
 * An upstream answer's head read from undici's raw list in one pass, with no headers object (undici's
 * wrapper for the new handler interface builds one per answer; upstream/direct-body.ts takes the raw
 * list through the legacy interface instead). Names are interned lower-case strings (header-names.ts:
 * a name seen before costs no allocation).
 *
 * Invariant: `forwarded` is what `forwardResponseHeaders(parseHeaders(raw), bodyChanged)` gives, with
 * `bodyChanged` false until `dropBodyFraming()`: lower-case names in first-arrival order, a repeated
 * header's values merged into one list at its first place. (One difference no upstream relies on: an
 * object puts integer-like names such as `123` first; here every name keeps its place.)
 */
export class AnswerHead {
  /** The headers to pass to the client, as an answer head's flat list (header-list.ts: AnswerHeaders). */
  readonly forwarded: (string | string[])[];
  /** First values of the headers the gateway reads (undefined when absent). */
  contentType: string | undefined;
  contentEncoding: string | undefined;
  transferEncoding: string | undefined;
  requestId: string | undefined;
  hasContentLength = false;

  constructor(
    readonly status: number,
    /** undici's raw list (its parser builds a new one per head and keeps no reference). */
    readonly raw: RawHeaderList,
  ) {
    let connection: string | undefined;
    // Sized for every header at once (no growth), then cut to what was kept.
    const out = new Array<string | string[]>(raw.length & ~1);
    let count = 0;
    // Past a few dozen headers (a hostile upstream may send thousands), repeats are found by a Map, not a scan.
    const index = raw.length > 2 * LINEAR_HEADERS ? new Map<string, number>() : undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = headerName(raw[i] as Buffer | string);
      const item = raw[i + 1] as Buffer | string;
      const value = typeof item === 'string' ? item : valueString(name, item);
      switch (name) {
        case 'content-type':
          this.contentType ??= value;
          break;
        case 'content-encoding':
          this.contentEncoding ??= value;
          break;
        case 'content-length':
          this.hasContentLength = true;
          break;
        case 'transfer-encoding':
          this.transferEncoding ??= value;
          break;
        case 'request-id':
          this.requestId ??= value;
          break;
        case 'connection':
          connection = connection === undefined ? value : `${connection},${value}`;
          break;
      }
      if (HOP_BY_HOP.has(name) || name.startsWith(GATEWAY_PREFIX)) continue;
      count = addHeader(out, count, name, value, index);
    }
    out.length = count;
    this.forwarded = out;
    // Nearly every answer says only `keep-alive` (or `close`): nothing more to drop.
    const listed = connectionListed(connection);
    if (listed !== undefined) dropHeaders(out, listed);
  }

  /** The body the client gets is not the upstream's bytes (decoded): its framing headers no longer describe it. */
  dropBodyFraming(): void {
    dropHeaders(this.forwarded, BODY_FRAMING);
  }

  /** The head as undici's headers object, built on demand (nothing on the gateway's path reads it). */
  get headers(): UpstreamHeaders {
    return parseHeaders(this.raw);
  }
}

/**
 * The value last read for each header name of an answer head (names interned: header-names.ts).
 * Bounded: at most MAX_REMEMBERED_NAMES names (the first ones seen), values of at most
 * MAX_REMEMBERED_VALUE_BYTES bytes; one value per name, replaced by the next one read.
 */
const lastValues = new Map<string, string>();
const MAX_REMEMBERED_NAMES = 512;
const MAX_REMEMBERED_VALUE_BYTES = 128;

/**
 * A raw header value as the string undici's headers object would hold (latin1): the very string read
 * last time for this name when the bytes are the same. An upstream repeats most of its head answer
 * after answer (content type, organization, limits, server), and each value read anew was a string
 * per header per answer, kept alive with the answer while it lingers.
 */
function valueString(name: string, bytes: Buffer): string {
  const last = lastValues.get(name);
  if (last !== undefined && sameLatin1(last, bytes)) return last;
  const value = bytes.toString('latin1');
  if (bytes.length <= MAX_REMEMBERED_VALUE_BYTES && (last !== undefined || lastValues.size < MAX_REMEMBERED_NAMES)) lastValues.set(name, value);
  return value;
}

/** Whether the string is exactly these bytes read as latin1; compared from the end, where changing values (counts, dates) differ. */
function sameLatin1(s: string, bytes: Buffer): boolean {
  if (s.length !== bytes.length) return false;
  for (let i = bytes.length - 1; i >= 0; i--) if (s.charCodeAt(i) !== bytes[i]) return false;
  return true;
}

/** Heads with at most this many headers find a repeated name by scanning the names (no Map per answer). */
const LINEAR_HEADERS = 32;

/**
 * Adds one header to the flat list's first `count` items, merging a repeat into the first value of
 * its name (as undici's headers object does); returns the new count. `index` (for long heads) finds
 * the place of a name in one look-up instead of a scan.
 */
function addHeader(list: (string | string[])[], count: number, name: string, value: string, index: Map<string, number> | undefined): number {
  let at = -1;
  if (index !== undefined) at = index.get(name) ?? -1;
  else {
    for (let i = 0; i < count; i += 2) {
      if (list[i] === name) {
        at = i;
        break;
      }
    }
  }
  if (at >= 0) {
    const had = list[at + 1] as string | string[];
    if (typeof had === 'string') list[at + 1] = [had, value];
    else had.push(value);
    return count;
  }
  list[count] = name;
  list[count + 1] = value;
  index?.set(name, count);
  return count + 2;
}

/** Removes the named headers from a flat list, in place, keeping the order of the rest. */
function dropHeaders(list: (string | string[])[], names: ReadonlySet<string>): void {
  let kept = 0;
  for (let i = 0; i + 1 < list.length; i += 2) {
    if (names.has(list[i] as string)) continue;
    list[kept++] = list[i] as string;
    list[kept++] = list[i + 1] as string | string[];
  }
  list.length = kept;
}

export function headerValue(headers: UpstreamHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
