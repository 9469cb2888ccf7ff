import type { GatewayMetrics } from '../observability/metrics.js';
import { GatewayError } from '../errors.js';
import { headerValue, type UpstreamHeaders } from './headers.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from './client.js';

/**
 * Safe retries. The SDK already retries (2 by default), so the gateway retries only what is
 * provably safe and cheap: a connection that was never established (nothing reached upstream),
 * and, when configured, a 529 overloaded answer. Always before any byte reached a client, never
 * for a body that cannot be replayed, and only while the retry budget allows: during an outage
 * retries cannot multiply the load.
 */

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
export function requestedDelayMs(headers: UpstreamHeaders, now = Date.now()): number | undefined {
  const ms = Number(headerValue(headers, 'retry-after-ms'));
  if (headerValue(headers, 'retry-after-ms') !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headerValue(headers, 'retry-after');
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Full-jitter exponential backoff. */
export function backoffMs(attempt: number, policy: RetryPolicy, random = Math.random): number {
  return Math.round(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

export class RetryingSender {
  constructor(
    private readonly client: UpstreamClient,
    private readonly policy: RetryPolicy,
    private readonly budget: RetryBudget,
    private readonly metrics: GatewayMetrics,
  ) {}

  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    this.budget.onRequest();
    const replayable = req.body === null || Buffer.isBuffer(req.body);
    for (let attempt = 0; ; attempt++) {
      const canRetry = replayable && attempt < this.policy.maxRetries;
      let answer: UpstreamResponse;
      try {
        answer = await this.client.send(req);
      } catch (err) {
        if (!(canRetry && err instanceof GatewayError && err.code === 'UPSTREAM_CONNECT_FAILED' && this.budget.tryWithdraw())) throw err;
        this.metrics.upstreamRetries.inc({ reason: 'connect' });
        await sleep(backoffMs(attempt, this.policy), req.signal);
        continue;
      }
      if (answer.status === 529 && this.policy.onOverloaded && canRetry) {
        const asked = requestedDelayMs(answer.headers);
        // An upstream asking for a longer wait than we would ever sleep: pass its answer on.
        const delay = asked ?? backoffMs(attempt, this.policy);
        if (delay <= this.policy.maxDelayMs && this.budget.tryWithdraw()) {
          this.metrics.upstreamRetries.inc({ reason: 'overloaded' });
          answer.body.resume();
          await sleep(delay, req.signal);
          continue;
        }
      }
      return answer;
    }
  }
}
