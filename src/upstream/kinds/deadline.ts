import { asError } from '../../core/errors.js';

/** A credential fetch that took longer than its deadline. */
export class CredentialDeadlineError extends Error {
  override readonly name = 'CredentialDeadlineError';
}

/**
 * `work`, bounded: rejects with CredentialDeadlineError after `ms`, or with the signal's reason
 * when it fires first. The work itself is not cancelled (credential providers memoise and coalesce
 * their fetches: a late answer serves the next call), but nobody waits for it past the deadline.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => finish(() => reject(signal.reason as Error));
    const timer = setTimeout(() => finish(() => reject(new CredentialDeadlineError(`no credentials within ${ms} ms`))), ms);
    let settled = false;
    function finish(settle: () => void): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    }
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(asError(err))),
    );
  });
}
