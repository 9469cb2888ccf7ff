import { createHash, randomBytes } from 'node:crypto';

/**
 * Gateway key secrets: `cgw_` and 40 base62 characters from crypto.randomBytes (about 238 bits).
 * The store keeps only their SHA-256 (hex) and a short display prefix. A fast unsalted hash is
 * safe here, unlike for passwords: the secrets are random and high-entropy, so no dictionary or
 * brute force over the hash is feasible, and an unsalted digest lets the hot path find a key by
 * one map lookup (O(1)) instead of trying a slow hash against every stored key.
 */
export const SECRET_PREFIX = 'cgw_';
const SECRET_CHARS = 40;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Characters shown in listings: `cgw_` and the first 6 random ones (never enough to guess the rest). */
const DISPLAY_CHARS = SECRET_PREFIX.length + 6;

export function newKeySecret(): string {
  let out = SECRET_PREFIX;
  // Rejection sampling: bytes >= 248 (= 4 * 62) are skipped so every character is equally likely.
  while (out.length < SECRET_PREFIX.length + SECRET_CHARS) {
    for (const byte of randomBytes(SECRET_CHARS)) {
      if (byte < 248 && out.length < SECRET_PREFIX.length + SECRET_CHARS) out += BASE62[byte % 62] as string;
    }
  }
  return out;
}

export function keyHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function displayPrefix(secret: string): string {
  return secret.slice(0, DISPLAY_CHARS);
}

/** Key and team ids: random, URL-safe, not secret. */
export function newId(kind: 'key' | 'team'): string {
  return `${kind}_${randomBytes(12).toString('base64url')}`;
}
