import { EventEmitter } from 'node:events';

/**
 * A call's stop: fires `abort` once, when nobody listens to the call any more. It is an
 * EventEmitter with `aborted` and `reason` because undici takes one as a request `signal` (an
 * EventEmitter or an EventTarget) and subscribes to it far more cheaply than to an AbortSignal.
 * A real AbortSignal is made only when some code asks for one (a credential fetch, a retry's sleep,
 * a wait for a connection, a join on Redis): creating and subscribing an AbortSignal on every call
 * was a visible share of the gateway's CPU per request (benchmarks/HISTORY.md, 2026-11-24 night
 * session).
 *
 * Its one event's listeners (undici: `once`/`addListener` and `removeListener`; the call's own code:
 * `once`/`off`) are kept in one field (one, or a list past one), and node's emitter constructor never
 * runs, so a call does not pay for an emitter's listener table (a dictionary object per call). Any
 * other event goes to node's emitter methods, whose table is then made on first use. It is an
 * EventEmitter for `instanceof` and the types (its prototype is EventEmitter's).
 */
type Listener = () => void;

/** EventEmitter's prototype with a constructor that sets up nothing (see CallStop). */
const LightEmitter = function LightEmitter(this: unknown) {} as unknown as typeof EventEmitter;
LightEmitter.prototype = EventEmitter.prototype;

export class CallStop extends LightEmitter {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;
  /** Who listens for `abort`, in order: none, one, or a list. */
  private abortListeners: Listener | Listener[] | undefined;

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

  override on(event: string | symbol, listener: (...args: unknown[]) => void): this {
    if (event !== 'abort') return super.on(event, listener);
    const listeners = this.abortListeners;
    if (listeners === undefined) this.abortListeners = listener;
    else if (typeof listeners === 'function') this.abortListeners = [listeners, listener];
    else listeners.push(listener);
    return this;
  }

  override addListener(event: string | symbol, listener: (...args: unknown[]) => void): this {
    return this.on(event, listener);
  }

  /** The same as `on`: `abort` fires at most once, and every listener is let go when it does. */
  override once(event: string | symbol, listener: (...args: unknown[]) => void): this {
    return this.on(event, listener);
  }

  /** Removes the latest registration of `listener`, as node's emitter does. */
  override off(event: string | symbol, listener: (...args: unknown[]) => void): this {
    if (event !== 'abort') return super.off(event, listener);
    const listeners = this.abortListeners;
    if (listeners === listener) this.abortListeners = undefined;
    else if (Array.isArray(listeners)) {
      const at = listeners.lastIndexOf(listener);
      if (at !== -1) listeners.splice(at, 1);
      if (listeners.length === 0) this.abortListeners = undefined;
    }
    return this;
  }

  override removeListener(event: string | symbol, listener: (...args: unknown[]) => void): this {
    return this.off(event, listener);
  }

  override listenerCount(event: string | symbol): number {
    if (event !== 'abort') return super.listenerCount(event);
    const listeners = this.abortListeners;
    if (listeners === undefined) return 0;
    return typeof listeners === 'function' ? 1 : listeners.length;
  }

  /** Calls every `abort` listener once, in order of registration (a throw stops the rest, as node's emitter). */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'abort') return super.emit(event, ...args);
    const listeners = this.abortListeners;
    if (listeners === undefined) return false;
    this.abortListeners = undefined;
    if (typeof listeners === 'function') listeners.call(this);
    else for (const listener of listeners) listener.call(this);
    return true;
  }
}
