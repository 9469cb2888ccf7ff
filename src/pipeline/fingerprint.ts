import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { lowerCaseName } from '../upstream/headers.js';
import { setAtMost } from '../core/bounded-map.js';

/**
 * The coalescing key. Two requests get the same fingerprint only when the upstream would treat
 * them as the same call for the same tenant: tenant, method, path with query, every `anthropic-*`
 * header (version, beta set, workspace, ...), and the body's exact bytes. Identical means
 * byte-identical: the model reads a prompt in the order it was written, so JSON differing only in
 * key order or number spelling is a different request (the official SDKs serialise one call the
 * same way every time). Nothing per attempt or per connection enters it: user-agent,
 * x-stainless-*, request ids, traceparent, accept-encoding.
 *
 * One SHA-256 per request: the fields are known before the body arrives, so the hash starts with
 * them and the body's chunks are fed to it as they are read (http/body.ts); no separate body
 * digest. A request that can share nothing is never hashed at all.
 */

/** `anthropic-beta: b,a` and `a, b` enable the same features. */
function normalizeBeta(value: string): string {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .sort()
    .join(',');
}

export interface FingerprintFields {
  tenant: string;
  method: string;
  /** Upstream path including the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /**
   * The same request's raw header list (node's `rawHeaders`), when at hand: the `anthropic-*` names are
   * found in it (a walk of a list) instead of by enumerating `headers` (a null-prototype object whose
   * enumeration builds a key list per request). Values are still read from `headers`: the key is the same.
   */
  rawHeaders?: readonly string[] | undefined;
}

/** A fingerprint being computed: feed it the body's bytes in order, then take the key once. */
export interface FingerprintHash {
  update(chunk: Buffer): void;
  key(): string;
}

const ANTHROPIC = 'anthropic-';

/** A raw header name's lower-case form when it is an `anthropic-*` one, else undefined (only a name that may be one is lower-cased). */
function anthropicName(sent: string): string | undefined {
  if (sent.length < ANTHROPIC.length || (sent.charCodeAt(0) | 0x20) !== 0x61) return undefined;
  // lowerCaseName: the very string when it is already lower-case.
  const name = lowerCaseName(sent);
  return name.startsWith(ANTHROPIC) ? name : undefined;
}

/** The request's `anthropic-*` header names, lower-case, each once, sorted (undefined when none). */
function anthropicNames(headers: IncomingHttpHeaders, raw: readonly string[] | undefined): string[] | undefined {
  let names: string[] | undefined;
  if (raw === undefined) {
    for (const name in headers) if (name.startsWith(ANTHROPIC)) names = withName(names, name);
  } else {
    for (let i = 0; i < raw.length; i += 2) {
      const name = anthropicName(raw[i] as string);
      if (name !== undefined) names = withName(names, name);
    }
  }
  if (names !== undefined && names.length > 1) names.sort();
  return names;
}

/** The names with one more, once (a list made with its first name: an empty literal grown by a push is allocated far larger). */
function withName(names: string[] | undefined, name: string): string[] {
  if (names === undefined) return [name];
  if (!names.includes(name)) names.push(name);
  return names;
}

/** One SHA-256 in progress (one object: no closures per request). */
class Fingerprinting implements FingerprintHash {
  constructor(private readonly hash: Hash) {}

  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  key(): string {
    return this.hash.digest('base64url');
  }
}

export function startFingerprint(fields: FingerprintFields): FingerprintHash {
  return fingerprintOf(fields.tenant, fields.method, fields.path, fields.headers, fields.rawHeaders);
}

/** `startFingerprint` with its fields as arguments (the request path's form: no fields object per request). */
export function fingerprintOf(tenant: string, method: string, path: string, headers: IncomingHttpHeaders, rawHeaders: readonly string[] | undefined): FingerprintHash {
  const memo = rawHeaders === undefined ? undefined : MEMOS.get(tenant);
  // A copy of the remembered prefix's hash: no digest to look up and set up, no prefix to feed (cold, a copy took about two thirds of the time).
  if (memo !== undefined && memoMatches(memo, method, path, headers, rawHeaders as readonly string[])) return new Fingerprinting(memo.hashed.copy());
  const hashed = createHash('sha256').update(prefixOf(tenant, method, path, headers, rawHeaders));
  // Remembered, the memo keeps this hash undigested and the request hashes on from a copy: the prefix is fed once.
  return new Fingerprinting(rawHeaders !== undefined && remember(tenant, method, path, headers, rawHeaders, hashed) ? hashed.copy() : hashed);
}

/** Every field but the body, length-prefixed, and the body's marker (remembered per tenant, hashed: see PrefixMemo). */
function prefixOf(tenant: string, method: string, path: string, headers: IncomingHttpHeaders, rawHeaders: readonly string[] | undefined): string {
  // Length-prefixed fields, one string (one template: fewer intermediate strings than a sum). The body
  // comes last, after its marker, so it needs no length of its own.
  let prefix = `${tenant.length}:${tenant}${method.length}:${method}${path.length}:${path}`;
  const names = anthropicNames(headers, rawHeaders);
  if (names !== undefined) {
    for (const name of names) {
      const raw = headers[name];
      const sent = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
      const value = name === 'anthropic-beta' ? normalizeBeta(sent) : sent;
      prefix += `${name.length}:${name}${value.length}:${value}`;
    }
  }
  return prefix + BODY_MARKER;
}

/**
 * One tenant's last prefix, hashed, and what it was made of: the method, the path and its `anthropic-*` headers
 * as sent (lower-case name, value, in the order of the raw list). A client sends the same ones request
 * after request, so the prefix is built (a dozen intermediate strings) once, not per request. A request
 * whose raw `anthropic-*` pairs differ in anything, their order included, builds its own (and is remembered).
 */
interface PrefixMemo {
  readonly method: string;
  readonly path: string;
  readonly pairs: readonly string[];
  /** The prefix fed to a SHA-256 and never digested: each request hashes on from a copy of it. */
  readonly hashed: Hash;
}

/** Tenants remembered at most (oldest out first): bounded, and each entry holds no secret (the tenant is a keyed hash). */
const MAX_MEMOS = 1_024;
const MEMOS = new Map<string, PrefixMemo>();

function memoMatches(memo: PrefixMemo, method: string, path: string, headers: IncomingHttpHeaders, raw: readonly string[]): boolean {
  if (memo.method !== method || memo.path !== path) return false;
  const pairs = memo.pairs;
  let at = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = anthropicName(raw[i] as string);
    if (name === undefined) continue;
    if (pairs[at] !== name || pairs[at + 1] !== headers[name]) return false;
    at += 2;
  }
  return at === pairs.length;
}

/** Remembers the tenant's prefix as `hashed` (the prefix fed, never digested); false when its pairs cannot be remembered. */
function remember(tenant: string, method: string, path: string, headers: IncomingHttpHeaders, raw: readonly string[], hashed: Hash): boolean {
  const pairs: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = anthropicName(raw[i] as string);
    if (name === undefined) continue;
    const value = headers[name];
    // A value node keeps as a list (never for anthropic-*, joined) is not remembered.
    if (typeof value !== 'string') return false;
    pairs.push(name, value);
  }
  setAtMost(MEMOS, tenant, { method, path, pairs, hashed }, MAX_MEMOS);
  return true;
}

/** `body`, length-prefixed as every field is: no value can be crafted to shift a boundary into the next field. */
const BODY_MARKER = '4:body';

/** The fingerprint of a request whose body is at hand (`undefined` without a body). */
export function fingerprint(fields: FingerprintFields, body?: Buffer | string): string {
  const hash = startFingerprint(fields);
  if (body !== undefined && body.length > 0) hash.update(Buffer.isBuffer(body) ? body : Buffer.from(body));
  return hash.key();
}
