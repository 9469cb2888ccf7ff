import { answerValue, type AnswerHeaders } from './header-list.js';

/** Retry arithmetic: policy, budget, backoff and the upstream's own `retry-after`. The retry interceptor (pipeline/call/retry.ts) applies them. */

export interface RetryPolicy {
  maxRetries: number;
  onOverloaded: boolean;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Retries may add at most `percent`% to the request rate (plus a small reserve). Each request
 * earns percent/100 of a token; each retry spends one.
 */
export class RetryBudget {
  private tokens: number;
  private readonly earn: number;
  private readonly cap: number;

  constructor(percent: number, reserve = 10) {
    this.earn = percent / 100;
    this.cap = reserve;
    this.tokens = percent > 0 ? reserve : 0;
  }

  onRequest(): void {
    this.tokens = Math.min(this.cap, this.tokens + this.earn);
  }

  tryWithdraw(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Delay the upstream asked for (`retry-after-ms`, then `retry-after` seconds or HTTP date), in ms. */
export function requestedDelayMs(headers: AnswerHeaders, now = Date.now()): number | undefined {
  const rawMs = answerValue(headers, 'retry-after-ms');
  const ms = Number(rawMs);
  if (rawMs !== undefined && rawMs.trim() !== '' && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = answerValue(headers, 'retry-after');
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (raw.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Full-jitter exponential backoff. */
export function backoffMs(attempt: number, policy: RetryPolicy, random = Math.random): number {
  return Math.round(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

/** Waits `ms`, or rejects with the signal's reason as soon as it fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
