import { reportFlightHookError, type CallOutcome, type FlightHead } from '../coalesce/flight.js';
import type { CallContext } from './chain.js';
import type { CallFacts } from './facts.js';
import type { CallStop } from '../../core/call-stop.js';

/**
 * The scope of one attempt at one upstream, inside the flight's scope. Interceptors inside the
 * route register `finally`, `onHead` and `observe` hooks as usual; the route then decides the attempt's fate:
 * - `accept()`: the attempt's answer is the call's answer: its hooks join the flight's, in the
 *   order they were registered, and run when the flight sees the head, the bytes, the end;
 * - `discard(outcome)`: the attempt failed over before any byte reached a client: its `finally`
 *   hooks run now, exactly once, with that attempt's own outcome (a breaker permit settles, a span
 *   ends), and its `onHead` and `observe` hooks never run.
 * Exactly one of the two happens; later calls are ignored.
 */
export class AttemptScope implements CallContext {
  private readonly settles: ((outcome: CallOutcome) => void)[] = [];
  private readonly observers: ((chunk: Buffer) => void)[] = [];
  private readonly headHooks: ((head: FlightHead) => void)[] = [];
  private decided = false;

  constructor(private readonly parent: CallContext) {}

  get signal(): AbortSignal {
    return this.parent.signal;
  }

  get stop(): CallStop {
    return this.parent.stop;
  }

  get facts(): CallFacts {
    return this.parent.facts;
  }

  onHead(onHead: (head: FlightHead) => void): void {
    if (this.decided) this.parent.onHead(onHead);
    else this.headHooks.push(onHead);
  }

  observe(onChunk: (chunk: Buffer) => void): void {
    if (this.decided) this.parent.observe(onChunk);
    else this.observers.push(onChunk);
  }

  finally(onSettle: (outcome: CallOutcome) => void): void {
    if (this.decided) this.parent.finally(onSettle);
    else this.settles.push(onSettle);
  }

  hold(): () => void {
    return this.parent.hold();
  }

  onIdle(fn: () => void): void {
    this.parent.onIdle(fn);
  }

  localListeners(): number {
    return this.parent.localListeners();
  }

  accept(): void {
    if (this.decided) return;
    this.decided = true;
    for (const hook of this.settles) this.parent.finally(hook);
    for (const hook of this.headHooks) this.parent.onHead(hook);
    for (const hook of this.observers) this.parent.observe(hook);
    this.settles.length = 0;
    this.headHooks.length = 0;
    this.observers.length = 0;
  }

  /** Runs the attempt's `finally` hooks now, newest first (as the flight would), each guarded. */
  discard(outcome: CallOutcome): void {
    if (this.decided) return;
    this.decided = true;
    const hooks = this.settles.splice(0).reverse();
    this.headHooks.length = 0;
    this.observers.length = 0;
    for (const hook of hooks) {
      try {
        hook(outcome);
      } catch (err) {
        reportFlightHookError(err);
      }
    }
  }
}
