/**
 * A node:cluster worker's requests to its supervisor over the IPC channel, each matched to its answer
 * by an id. Every request has a deadline, at most `maxWaiting` wait at once, and a request the channel
 * cannot carry (the supervisor is gone) fails at once. The caller's own message handler decodes the
 * supervisor's messages and hands each answer to `settle`; a late answer (past its deadline) is dropped.
 */

/** Why a request failed without an answer. */
export type RequestFailure = 'deadline' | 'full' | 'gone';

export interface SupervisorRequestOptions {
  readonly deadlineMs: number;
  readonly maxWaiting: number;
  /** The error a request fails with, for each reason (its message names what was asked). */
  readonly failure: (reason: RequestFailure, deadlineMs: number, maxWaiting: number) => Error;
}

/**
 * A send that loses the race with the other side's exit fails through this callback instead of an
 * 'error' event nobody listens to; the exit itself is handled where it is seen ('exit', the deadline).
 */
export const ignoreSendError = (): void => undefined;

export class SupervisorRequests<Answer> {
  private readonly waiting = new Map<number, { resolve: (answer: Answer) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 0;

  constructor(private readonly options: SupervisorRequestOptions) {}

  /** Sends the message made for a new id; resolves with the answer settled for that id. */
  ask(message: (id: number) => object): Promise<Answer> {
    const { deadlineMs, maxWaiting, failure } = this.options;
    if (this.waiting.size >= maxWaiting) return Promise.reject(failure('full', deadlineMs, maxWaiting));
    if (process.send === undefined || !process.connected) return Promise.reject(failure('gone', deadlineMs, maxWaiting));
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(failure('deadline', deadlineMs, maxWaiting));
      }, deadlineMs);
      this.waiting.set(id, { resolve, reject, timer });
      process.send?.(message(id), undefined, {}, (err: Error | null) => {
        if (err !== null) this.settle(id, failure('gone', deadlineMs, maxWaiting));
      });
    });
  }

  /** The supervisor's answer to request `id`, or the error it ends with; nothing when no request waits for it. */
  settle(id: number, answer: Answer | Error): void {
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    if (answer instanceof Error) waiter.reject(answer);
    else waiter.resolve(answer);
  }
}
