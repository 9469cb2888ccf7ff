import CircuitBreaker from 'opossum';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/**
 * One opossum breaker per (upstream origin, model): an overloaded model does not block the others.
 *
 * opossum only sees the promise its action returns, so the action returns a promise the proxy
 * settles itself once the upstream outcome is known: failure for transport errors, timeouts, 5xx,
 * 529 and streams that break after their headers; success for everything else (4xx and 429 are
 * the client's business, not upstream health). opossum's own `timeout` is off: deadlines come from
 * undici and per-request AbortSignals. One flight is one outcome, however many clients share it.
 */

export interface BreakerOptions {
  errorThresholdPercent: number;
  volumeThreshold: number;
  windowMs: number;
  resetTimeoutMs: number;
}

/** Settles one admitted upstream call's outcome for its breaker. Idempotent: the first word counts. */
export interface BreakerPermit {
  succeed(): void;
  fail(reason: unknown): void;
}

const STATE_VALUE = { closed: 0, halfOpen: 1, open: 2 } as const;
const EVENTS = ['open', 'close', 'halfOpen', 'reject', 'success', 'failure'] as const;
/** Models are already bounded labels; this bounds the breakers even if that changes. */
const MAX_BREAKERS = 1_000;

class ModelBreaker {
  readonly name: string;
  readonly breaker: CircuitBreaker<[() => Promise<void>], void>;
  private readonly resetTimeoutMs: number;
  private openedAt = 0;

  constructor(name: string, options: BreakerOptions, metrics: GatewayMetrics, logger: Logger) {
    this.name = name;
    this.breaker = new CircuitBreaker((run: () => Promise<void>) => run(), {
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercent,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.windowMs,
      rollingCountBuckets: 10,
      resetTimeout: options.resetTimeoutMs,
      name,
    });
    const resetTimeoutMs = options.resetTimeoutMs;
    metrics.breakerState.set({ breaker: name }, STATE_VALUE.closed);
    const emitter = this.breaker as unknown as NodeJS.EventEmitter;
    for (const event of EVENTS) {
      emitter.on(event, () => metrics.breakerEvents.inc({ breaker: name, event }));
    }
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      metrics.breakerState.set({ breaker: name }, STATE_VALUE.open);
      logger.warn({ breaker: name, state: 'open', retryAfterMs: resetTimeoutMs }, 'circuit breaker opened');
    });
    this.breaker.on('halfOpen', () => {
      metrics.breakerState.set({ breaker: name }, STATE_VALUE.halfOpen);
      logger.info({ breaker: name, state: 'halfOpen' }, 'circuit breaker half-open: next call probes upstream');
    });
    this.breaker.on('close', () => {
      metrics.breakerState.set({ breaker: name }, STATE_VALUE.closed);
      logger.info({ breaker: name, state: 'closed' }, 'circuit breaker closed');
    });
    this.resetTimeoutMs = resetTimeoutMs;
  }

  /** Seconds until the breaker lets a probe through (at least 1: the SDK retries on it). */
  retryAfterSeconds(): number {
    if (this.breaker.halfOpen) return 1;
    return Math.max(1, Math.ceil((this.openedAt + this.resetTimeoutMs - Date.now()) / 1000));
  }

  admit(): BreakerPermit {
    // opossum runs the action synchronously inside fire() when it admits the call.
    const admitted: { settle?: { resolve: () => void; reject: (e: unknown) => void } } = {};
    this.breaker
      .fire(() => new Promise<void>((resolve, reject) => (admitted.settle = { resolve, reject })))
      .catch(() => undefined); // outcomes are reported through the permit; rejections are expected
    const settle = admitted.settle;
    if (settle === undefined) {
      const retryAfter = this.retryAfterSeconds();
      const state = this.breaker.halfOpen ? 'half-open (a probe is in flight)' : 'open';
      throw new GatewayError('CIRCUIT_OPEN', 503, `Upstream for ${this.name} is failing; circuit breaker ${state}. Retry after ${retryAfter}s.`, {
        headers: { 'retry-after': String(retryAfter) },
      });
    }
    const s = settle;
    let done = false;
    return {
      succeed: () => {
        if (done) return;
        done = true;
        s.resolve();
      },
      fail: (reason) => {
        if (done) return;
        done = true;
        s.reject(reason instanceof Error ? reason : new Error(String(reason)));
      },
    };
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}

const OPEN_PERMIT: BreakerPermit = { succeed: () => undefined, fail: () => undefined };

export class Breakers {
  private readonly breakers = new Map<string, ModelBreaker>();

  constructor(
    private readonly origin: string,
    private readonly options: BreakerOptions | undefined,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** Admits one upstream call for `model`, or throws a 503 GatewayError when its breaker is open. */
  admit(model: string): BreakerPermit {
    if (this.options === undefined) return OPEN_PERMIT;
    const name = `${new URL(this.origin).host}/${model}`;
    let breaker = this.breakers.get(name);
    if (breaker === undefined) {
      const key = this.breakers.size >= MAX_BREAKERS ? `${new URL(this.origin).host}/other` : name;
      breaker = this.breakers.get(key) ?? new ModelBreaker(key, this.options, this.metrics, this.logger);
      this.breakers.set(key, breaker);
    }
    return breaker.admit();
  }

  /** Stops every breaker's timers. */
  shutdown(): void {
    for (const b of this.breakers.values()) b.shutdown();
  }
}
