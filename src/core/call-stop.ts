import { EventEmitter } from 'node:events';

/**
 * A call's stop: fires `abort` once, when nobody listens to the call any more. It is an
 * EventEmitter with `aborted` and `reason` because undici takes one as a request `signal` (an
 * EventEmitter or an EventTarget) and subscribes to it far more cheaply than to an AbortSignal.
 * A real AbortSignal is made only when some code asks for one (a credential fetch, a retry's sleep,
 * a wait for a connection, a join on Redis): creating and subscribing an AbortSignal on every call
 * was a visible share of the gateway's CPU per request (benchmarks/HISTORY.md, 2026-11-24 night
 * session).
 */
export class CallStop extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;

  /** The same stop as an AbortSignal (made on first use; already aborted if the stop fired). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Fires once; later calls do nothing. The reason is an `AbortError`, as AbortController's. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new DOMException('This operation was aborted', 'AbortError');
    this.controller?.abort(this.reason);
    this.emit('abort');
  }
}
