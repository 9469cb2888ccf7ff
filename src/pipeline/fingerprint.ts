import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The coalescing key. Two requests get the same fingerprint only when the upstream would treat
 * them as the same call for the same tenant: tenant, method, path with query, every `anthropic-*`
 * header (version, beta set, workspace, ...), and the body's canonical JSON (key order does not
 * matter). Nothing per attempt or per connection enters it: user-agent, x-stainless-*, request
 * ids, traceparent, accept-encoding.
 */

/** Recursively key-sorted JSON; arrays keep their order (it is meaningful). */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v: unknown) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const v = record[key];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

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
  /** Parsed JSON body, or undefined for requests without one. */
  json: unknown;
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
  field(input.json === undefined ? '' : canonicalJson(input.json));
  return hash.digest('base64url');
}
