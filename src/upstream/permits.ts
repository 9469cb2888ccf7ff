/**
 * Upstream capacity as counted permits: one per HTTP/1.1 connection, or one per HTTP/2 stream.
 *
 * Why not leave the queue to undici: in undici 7 a request waiting in a Pool's queue cannot be taken
 * out of it. Its AbortSignal only takes effect once a connection picks it up (api-request.js
 * `onConnect`), so neither a deadline nor a client that went away frees it, and the wait is
 * invisible. Requests therefore wait here, where every wait has a deadline and an abort removes the
 * waiter at once; undici only ever receives requests it can send immediately.
 *
 * Invariants: `inUse <= capacity`; a waiter exists only while `inUse === capacity`; a released
 * permit goes to the oldest waiter (FIFO) without passing through `inUse`. The number of waiters
 * is bounded by the gateway's MAX_CONCURRENT_REQUESTS (each is a live client request).
 */

export class PoolWaitTimeout extends Error {
  override readonly name = 'PoolWaitTimeout';
  constructor(readonly waitedMs: number) {
    super(`no upstream connection became free within ${waitedMs} ms`);
  }
}

interface Waiter {
  grant: () => void;
}

export class ConnectionPermits {
  private inUse = 0;
  /** Insertion-ordered: the first entry is the oldest waiter. */
  private readonly waiters = new Set<Waiter>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  /** Permits held by requests in progress. */
  get active(): number {
    return this.inUse;
  }

  /** Requests waiting for a permit. */
  get queued(): number {
    return this.waiters.size;
  }

  /** Takes a permit when one is free and nobody waits (no overtaking); the hot path allocates nothing. */
  tryAcquire(): boolean {
    if (this.inUse < this.capacity && this.waiters.size === 0) {
      this.inUse++;
      return true;
    }
    return false;
  }

  /**
   * Waits for a permit for at most `timeoutMs`. Resolves holding one; rejects with PoolWaitTimeout
   * past the deadline, or with the signal's reason when it aborts first. Either way the waiter is gone.
   */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        leave();
        reject(signal.reason as Error);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          resolve();
        },
      };
      const timer = setTimeout(() => {
        leave();
        reject(new PoolWaitTimeout(timeoutMs));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Returns a permit: straight to the oldest waiter, else back to the pool. Call once per permit. */
  release(): void {
    // Nobody waiting (the common case): no iterator per release.
    if (this.waiters.size === 0) {
      this.inUse--;
      return;
    }
    const next = this.waiters.values().next();
    if (!next.done) next.value.grant();
    else this.inUse--;
  }
}
