import CircuitBreaker from 'opossum';
import { GatewayError, asError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { CounterSeries } from '../observability/metric-cells.js';
import type { ModelLabels } from '../observability/labels.js';

/**
 * One opossum breaker per (upstream, model): an overloaded model does not block the others, and an
 * outage of one upstream does not block another (the route fails over past an open breaker).
 * Requests that name no model get one breaker per endpoint, so failing uploads never block model
 * listings. Breakers are keyed by the real model string in a bounded LRU (evicting closed ones
 * first), never by a metric label: junk model names cannot merge real models into one breaker.
 *
 * opossum only sees the promise its action returns, so the action returns a promise the gateway
 * settles itself through a permit once the upstream outcome is known. opossum's own `timeout` is
 * off: deadlines come from undici and per-request signals. A half-open breaker admits exactly one
 * probe; the probe's permit settles by its deadline at worst.
 *
 * Metrics: `circuit_breaker_state` is read from the breakers that exist at each scrape, each under
 * its model's metric label (so its series lives and dies with the breaker, and never carries a raw
 * model string); `circuit_breaker_events_total` counts under the label a breaker has at the event.
 */

export interface BreakerOptions {
  errorThresholdPercent: number;
  volumeThreshold: number;
  windowMs: number;
  resetTimeoutMs: number;
}

/** Settles one admitted upstream call's outcome for its breaker. Idempotent: the first word counts. */
export interface BreakerPermit {
  /** This call is the half-open probe: while it runs, every other call for its breaker is refused. */
  readonly probe: boolean;
  succeed(): void;
  fail(reason: unknown): void;
}

/** Each breaker state's value in `circuit_breaker_state`: the higher, the more open. */
export const STATE_VALUE = { closed: 0, halfOpen: 1, open: 2 } as const;
export type BreakerStateName = keyof typeof STATE_VALUE;

/** The state a `circuit_breaker_state` value stands for (closed for anything unknown). */
export function breakerStateName(value: number): BreakerStateName {
  return value === STATE_VALUE.open ? 'open' : value === STATE_VALUE.halfOpen ? 'halfOpen' : 'closed';
}
const EVENTS = ['open', 'close', 'halfOpen', 'reject', 'success', 'failure'] as const;
type BreakerEvent = (typeof EVENTS)[number];

/** Outcomes are reported through the permit: the rejection of a failed call's `fire()` is expected. */
const ignore = (): undefined => undefined;

/**
 * One admitted call's permit, and opossum's action for it: `fire(permit)` runs `begin()`
 * synchronously when it admits the call, and the promise it returns is what the permit settles.
 * One object per call (no action closure, executor, settle record or permit closures of its own).
 */
class Permit implements BreakerPermit {
  /** The permit whose promise is being made: `begin` sets it, `capture` (the executor, called synchronously by the Promise constructor) takes it. */
  private static opening: Permit | undefined;
  /** Set by `begin` (so only for an admitted call); cleared by the first word. */
  private resolve: (() => void) | undefined = undefined;
  private reject: ((reason: Error) => void) | undefined = undefined;
  /** Whether opossum ran the action: the call was admitted. */
  admitted = false;

  constructor(readonly probe: boolean) {}

  /** opossum's action: the promise this permit settles. */
  static readonly run = (permit: Permit): Promise<void> => permit.begin();

  private static readonly capture = (resolve: () => void, reject: (reason: Error) => void): void => {
    const permit = Permit.opening as Permit;
    Permit.opening = undefined;
    permit.resolve = resolve;
    permit.reject = reject;
  };

  private begin(): Promise<void> {
    this.admitted = true;
    Permit.opening = this;
    return new Promise<void>(Permit.capture);
  }

  succeed(): void {
    const resolve = this.resolve;
    if (resolve === undefined) return;
    this.resolve = undefined;
    this.reject = undefined;
    resolve();
  }

  fail(reason: unknown): void {
    const reject = this.reject;
    if (reject === undefined) return;
    this.resolve = undefined;
    this.reject = undefined;
    reject(asError(reason));
  }
}

/** A breaker's metric label now: a model's label changes at most once (when it is vouched for or earned). */
type BreakerLabel = () => string;

class ModelBreaker {
  readonly breaker: CircuitBreaker<[Permit], void>;
  /** When it was last admitted to (Breakers' use counter): the eviction order. */
  lastUsed = 0;
  private openedAt = 0;
  /** `circuit_breaker_events_total`'s series of each event, under the label it was resolved for (a label changes at most once or twice). */
  private readonly eventSeries: Partial<Record<BreakerEvent, { readonly label: string; readonly series: CounterSeries }>> = {};

  constructor(
    /** What the breaker guards, as clients name it (the model, or `endpoint:<name>`). */
    readonly subject: string,
    /**
     * Its metric and log name, read at each event and scrape: a model earns its own label only once
     * it is vouched for or upstream answered it with a 2xx (observability/labels.ts); until then the
     * breaker reports as `<upstream>/other`, with the other breakers of unvouched models.
     */
    readonly label: BreakerLabel,
    private readonly options: BreakerOptions,
    private readonly metrics: GatewayMetrics,
    logger: Logger,
  ) {
    this.breaker = new CircuitBreaker(Permit.run, {
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercent,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.windowMs,
      rollingCountBuckets: 10,
      resetTimeout: options.resetTimeoutMs,
      // Off: nothing reads opossum's latency percentiles or its snapshots. On, every bucket interval
      // (a tenth of the window) concatenated and sorted every call's latency in the window (10,000
      // at 1,000 req/s: milliseconds of stall per second per breaker), and so did every failure.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    const emitter = this.breaker as unknown as NodeJS.EventEmitter;
    for (const event of EVENTS) {
      emitter.on(event, () => this.count(event));
    }
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      logger.warn({ breaker: label(), state: 'open', retryAfterMs: options.resetTimeoutMs }, 'circuit breaker opened');
    });
    this.breaker.on('halfOpen', () => {
      logger.info({ breaker: label(), state: 'halfOpen' }, 'circuit breaker half-open: next call probes upstream');
    });
    this.breaker.on('close', () => {
      logger.info({ breaker: label(), state: 'closed' }, 'circuit breaker closed');
    });
  }

  /** One event under the breaker's label now: the series is resolved again only when the label changed. */
  private count(event: BreakerEvent): void {
    const label = this.label();
    let counted = this.eventSeries[event];
    if (counted?.label !== label) {
      counted = { label, series: this.metrics.breakerEvents.labels({ breaker: label, event }) };
      this.eventSeries[event] = counted;
    }
    counted.series.inc();
  }

  get closed(): boolean {
    return this.breaker.closed;
  }

  /** Its state as `circuit_breaker_state` reports it. */
  get state(): number {
    if (this.breaker.halfOpen) return STATE_VALUE.halfOpen;
    return this.breaker.opened ? STATE_VALUE.open : STATE_VALUE.closed;
  }

  /** Seconds until the breaker lets a probe through (at least 1: the SDK retries on it). */
  retryAfterSeconds(): number {
    if (this.breaker.halfOpen) return 1;
    return Math.max(1, Math.ceil((this.openedAt + this.options.resetTimeoutMs - Date.now()) / 1000));
  }

  admit(): BreakerPermit {
    const permit = new Permit(this.breaker.halfOpen);
    // opossum runs the action (Permit.run) synchronously inside fire() when it admits the call.
    this.breaker.fire(permit).catch(ignore);
    if (!permit.admitted) {
      const retryAfter = this.retryAfterSeconds();
      const what = this.subject.length > 100 ? `${this.subject.slice(0, 100)}...` : this.subject;
      const state = this.breaker.halfOpen ? 'a recovery probe is in flight' : 'recent upstream calls failed';
      throw new GatewayError('CIRCUIT_OPEN', `${what} is temporarily overloaded (${state}; circuit breaker open). Retry after ${retryAfter}s.`, {
        headers: { 'retry-after': String(retryAfter) },
      });
    }
    return permit;
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}

const OPEN_PERMIT: BreakerPermit = { probe: false, succeed: () => undefined, fail: () => undefined };

/** The label of a model-less breaker: its endpoint's, fixed. */
function fixedLabel(label: string): BreakerLabel {
  return () => label;
}

/** The label of a model's breaker (`<upstream>/<model label>`), built again only when the model's label changed. */
function modelLabel(upstream: string, model: string, models: ModelLabels): BreakerLabel {
  let knownAs: string | undefined;
  let label = '';
  return () => {
    const known = models.known(model);
    if (known !== knownAs) {
      knownAs = known;
      label = `${upstream}/${known}`;
    }
    return label;
  };
}

/** What one breaker judges: the model, or the endpoint when the request names none. */
function subjectOf(model: string | undefined, endpoint: string): string {
  return model ?? `endpoint:${endpoint}`;
}

/** Upstream names cannot hold a NUL: the key cannot be forged across upstreams. */
function breakerKey(upstream: string, subject: string): string {
  return `${upstream}\0${subject}`;
}

export class Breakers {
  private readonly breakers = new Map<string, ModelBreaker>();
  /** Admissions so far: each breaker records the count at its last use. */
  private uses = 0;

  constructor(
    private readonly options: BreakerOptions | undefined,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly maxBreakers = 1_000,
  ) {
    // `circuit_breaker_state` is read from the breakers at each scrape: one series per label of a breaker
    // that exists, so an evicted breaker's series is gone with it and nothing is set on the request path.
    metrics.reportBreakerStates(() => this.states());
  }

  /** (label, state) of every breaker now. Labels are bounded (observability/labels.ts); breakers by the LRU. */
  private *states(): Iterable<readonly [string, number]> {
    for (const breaker of this.breakers.values()) yield [breaker.label(), breaker.state];
  }

  get size(): number {
    return this.breakers.size;
  }

  /** Every breaker now, with its label and when an open one lets its probe through (the console's Upstreams page; not the request path). */
  snapshot(): { breaker: string; state: 'closed' | 'halfOpen' | 'open'; probeInSeconds: number | undefined }[] {
    const out: { breaker: string; state: 'closed' | 'halfOpen' | 'open'; probeInSeconds: number | undefined }[] = [];
    for (const b of this.breakers.values()) {
      const state = breakerStateName(b.state);
      out.push({ breaker: b.label(), state, probeInSeconds: state === 'open' ? b.retryAfterSeconds() : undefined });
    }
    return out;
  }

  /** Whether a breaker for this call exists now (for tests). */
  has(upstream: string, model: string | undefined, endpoint: string): boolean {
    return this.breakers.has(breakerKey(upstream, subjectOf(model, endpoint)));
  }

  /**
   * Whether the breaker of this call is open now, refusing every call: cache affinity yields to it.
   * A half-open breaker does not refuse its next call, the probe that may close it (affinity sending
   * a session there is that probe; were it avoided too, nothing would ever probe it). Creates nothing.
   */
  refuses(upstream: string, model: string | undefined, endpoint: string): boolean {
    const breaker = this.breakers.get(breakerKey(upstream, subjectOf(model, endpoint)));
    return breaker !== undefined && breaker.state === STATE_VALUE.open;
  }

  /**
   * Admits one call to `upstream` for `model` (or, when the request names none, for its endpoint),
   * or throws a 529 CIRCUIT_OPEN GatewayError when that breaker is open.
   */
  admit(upstream: string, model: string | undefined, endpoint: string): BreakerPermit {
    if (this.options === undefined) return OPEN_PERMIT;
    const subject = subjectOf(model, endpoint);
    const key = breakerKey(upstream, subject);
    let breaker = this.breakers.get(key);
    if (breaker === undefined) {
      if (this.breakers.size >= this.maxBreakers) this.evictOne();
      const label = model === undefined ? fixedLabel(`${upstream}/endpoint:${endpoint}`) : modelLabel(upstream, model, this.metrics.models);
      breaker = new ModelBreaker(subject, label, this.options, this.metrics, this.logger);
      this.breakers.set(key, breaker);
    }
    // Recency is a counter on the breaker, not the map's order: re-inserting on every call churned the
    // map's backing tables (garbage the young generation had to promote) for an order only eviction reads.
    breaker.lastUsed = ++this.uses;
    return breaker.admit();
  }

  /** Evicts the least recently used closed breaker (an open one keeps protecting its upstream); the least recently used if none is closed. Runs only when a new breaker finds the map full. */
  private evictOne(): void {
    let victim: string | undefined;
    let victimUse = Infinity;
    let oldest: string | undefined;
    let oldestUse = Infinity;
    for (const [subject, breaker] of this.breakers) {
      if (breaker.lastUsed < oldestUse) {
        oldest = subject;
        oldestUse = breaker.lastUsed;
      }
      if (breaker.closed && breaker.lastUsed < victimUse) {
        victim = subject;
        victimUse = breaker.lastUsed;
      }
    }
    victim ??= oldest;
    if (victim === undefined) return;
    this.breakers.get(victim)?.shutdown();
    this.breakers.delete(victim);
  }

  /** Stops every breaker's timers. */
  shutdown(): void {
    for (const b of this.breakers.values()) b.shutdown();
  }
}
