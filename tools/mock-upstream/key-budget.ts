import { createHash } from 'node:crypto';
import type { KeyBudgetSpec } from './script.js';

/**
 * Per-API-key rate limits, as the API reports them: every answer to a key carries
 * anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}; once a key's requests or
 * estimated tokens for the window are spent, it gets 429 rate_limit_error with retry-after until
 * the window resets. Fixed windows, starting at a key's first request. Keys are held as a SHA-256
 * prefix (the raw key is never stored or shown) in a map of at most MAX_KEYS, oldest evicted first.
 */

const MAX_KEYS = 10_000;
/** What tokens-limit reports when the budget counts requests only. */
const UNLIMITED_TOKENS = 2_000_000;

interface Window {
  startedAt: number;
  requests: number;
  tokens: number;
}

export interface BudgetVerdict {
  /** The rate-limit headers of this answer. */
  headers: Record<string, string>;
  /** Seconds until the window resets when the key is over budget; undefined when it may proceed. */
  limitedForS?: number;
}

export function keyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** Tokens a request is charged: its bytes / 4, at least 1 (the mock's token model is not the API's). */
export function estimatedTokens(bodyBytes: number): number {
  return Math.max(1, Math.ceil(bodyBytes / 4));
}

export class KeyBudgets {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly spec: KeyBudgetSpec,
    private readonly now: () => number = Date.now,
  ) {}

  /** Charges one request of `tokens` to `key` unless that key is over budget. */
  charge(key: string, tokens: number): BudgetVerdict {
    const id = keyId(key);
    const now = this.now();
    let w = this.windows.get(id);
    if (w === undefined || now >= w.startedAt + this.spec.windowMs) {
      this.windows.delete(id);
      w = { startedAt: now, requests: 0, tokens: 0 };
      this.windows.set(id, w);
      if (this.windows.size > MAX_KEYS) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
    }
    const tokenLimit = this.spec.tokens ?? UNLIMITED_TOKENS;
    const over = w.requests + 1 > this.spec.requests || (this.spec.tokens !== undefined && w.tokens + tokens > this.spec.tokens);
    if (!over) {
      w.requests++;
      w.tokens += tokens;
    }
    const resetAt = w.startedAt + this.spec.windowMs;
    const reset = new Date(resetAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const headers = {
      'anthropic-ratelimit-requests-limit': String(this.spec.requests),
      'anthropic-ratelimit-requests-remaining': String(Math.max(0, this.spec.requests - w.requests)),
      'anthropic-ratelimit-requests-reset': reset,
      'anthropic-ratelimit-tokens-limit': String(tokenLimit),
      'anthropic-ratelimit-tokens-remaining': String(Math.max(0, tokenLimit - w.tokens)),
      'anthropic-ratelimit-tokens-reset': reset,
    };
    return over ? { headers, limitedForS: Math.max(1, Math.ceil((resetAt - now) / 1000)) } : { headers };
  }

  /** Per key id: requests and tokens spent in the current window (GET /_mock/script). */
  snapshot(): Record<string, { requests: number; tokens: number }> {
    const out: Record<string, { requests: number; tokens: number }> = {};
    for (const [id, w] of this.windows) out[id] = { requests: w.requests, tokens: w.tokens };
    return out;
  }
}
