import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The coalescing key. Two requests get the same fingerprint only when the upstream would treat
 * them as the same call for the same tenant: tenant, method, path with query, every `anthropic-*`
 * header (version, beta set, workspace, ...), and the body's exact bytes. Identical means
 * byte-identical: the model reads a prompt in the order it was written, so JSON differing only in
 * key order or number spelling is a different request (the official SDKs serialise one call the
 * same way every time). Nothing per attempt or per connection enters it: user-agent,
 * x-stainless-*, request ids, traceparent, accept-encoding.
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

export interface FingerprintInput {
  tenant: string;
  method: string;
  /** Upstream path including the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** SHA-256 of the body's exact bytes (http/body.ts computes it as the body arrives); '' without a body. */
  bodyDigest: string;
}

export function fingerprint(input: FingerprintInput): string {
  const hash = createHash('sha256');
  // Length-prefixed fields: no value can be crafted to shift the boundary into the next field.
  const field = (s: string): void => {
    hash.update(`${s.length}:`).update(s);
  };
  field(input.tenant);
  field(input.method);
  field(input.path);
  const names = Object.keys(input.headers)
    .filter((n) => n.startsWith('anthropic-'))
    .sort();
  for (const name of names) {
    const raw = input.headers[name];
    const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
    field(name);
    field(name === 'anthropic-beta' ? normalizeBeta(value) : value);
  }
  field('body');
  field(input.bodyDigest);
  return hash.digest('base64url');
}
