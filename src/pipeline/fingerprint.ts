import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

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
}

/** A fingerprint being computed: feed it the body's bytes in order, then take the key once. */
export interface FingerprintHash {
  update(chunk: Buffer): void;
  key(): string;
}

export function startFingerprint(fields: FingerprintFields): FingerprintHash {
  // Length-prefixed fields, one string: no value can be crafted to shift the boundary into the
  // next field. The body comes last, after its marker, so it needs no length of its own.
  const field = (s: string): string => `${s.length}:${s}`;
  let prefix = field(fields.tenant) + field(fields.method) + field(fields.path);
  const names: string[] = [];
  for (const name in fields.headers) if (name.startsWith('anthropic-')) names.push(name);
  names.sort();
  for (const name of names) {
    const raw = fields.headers[name];
    const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
    prefix += field(name) + field(name === 'anthropic-beta' ? normalizeBeta(value) : value);
  }
  const hash: Hash = createHash('sha256').update(prefix + field('body'));
  return {
    update: (chunk) => void hash.update(chunk),
    key: () => hash.digest('base64url'),
  };
}

/** The fingerprint of a request whose body is at hand (`undefined` without a body). */
export function fingerprint(fields: FingerprintFields, body?: Buffer | string): string {
  const hash = startFingerprint(fields);
  if (body !== undefined && body.length > 0) hash.update(Buffer.isBuffer(body) ? body : Buffer.from(body));
  return hash.key();
}
