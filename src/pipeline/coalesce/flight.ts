import type { GatewayError } from '../../errors.js';
import { anthropicErrorBody } from '../../errors.js';

/**
 * One upstream call and everyone listening to it. A flight belongs to no single client: it runs
 * while at least one subscriber listens and is aborted when the last one leaves.
 *
 * Ownership: only the pump (`run`) writes `head`, `replay` and `state`; subscribers only read them,
 * synchronously, when they join. Every subscriber therefore sees the same status, headers and body
 * bytes: a late joiner gets the replay so far, then the live chunks.
 */

/** What a flight needs from a client response. node's ServerResponse satisfies it. */
export interface Sink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly writableFinished: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  writeHead(status: number): unknown;
  flushHeaders(): void;
  write(chunk: Buffer | string): boolean;
  end(chunk?: Buffer | string): unknown;
  destroy(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

export interface FlightHead {
  status: number;
  headers: readonly (readonly [string, string | readonly string[]])[];
  eventStream: boolean;
}

/** What the upstream gave the flight: a head and a body to pump. */
export interface FlightSource {
  head: FlightHead;
  body: AsyncIterable<Buffer> | Iterable<Buffer>;
  /** Sees every body chunk once, before any subscriber does (usage accounting). */
  onChunk?: (chunk: Buffer) => void;
}

export type SubscriberOutcome =
  /** The flight's answer was written to this subscriber; `complete` is false when the upstream failed mid-body. */
  | { kind: 'served'; complete: boolean }
  /** The flight failed before any byte reached this subscriber: the caller answers with this error. */
  | { kind: 'failed'; error: GatewayError }
  /** The client went away, or was dropped for being too slow. */
  | { kind: 'gone'; reason: 'disconnected' | 'slow' | 'aborted' };

export interface FlightLimits {
  /** Bytes of body kept for late joiners; past it the flight stops taking joiners and frees them. */
  maxReplayBytes: number;
  /** Bytes queued at one client beyond which that client (alone) is dropped. */
  maxSubscriberBufferBytes: number;
}

export interface FlightOutcome {
  /** The upstream answer was fully received (whatever its status). */
  complete: boolean;
  head: FlightHead | undefined;
  /** A failure before the head (GatewayError) or while pumping the body. */
  error: unknown;
  /** Subscribers that joined over the flight's life, the leader included. */
  subscribers: number;
}

interface Subscription {
  sink: Sink;
  settle: (outcome: SubscriberOutcome) => void;
  onClose: () => void;
  done: boolean;
}

type State = 'pending' | 'streaming' | 'done';

const SLOW_DROP_GRACE_MS = 30_000;

export class Flight {
  readonly key: string;
  private readonly limits: FlightLimits;
  private readonly abortController = new AbortController();
  private readonly subscriptions = new Set<Subscription>();
  private state: State = 'pending';
  private head: FlightHead | undefined;
  private replay: Buffer[] | undefined = [];
  private replayBytes = 0;
  private joinedTotal = 0;
  /** Holders that keep the flight running with no local subscriber (remote followers listening). */
  private holds = 0;
  /** Called when the last local subscriber left while the flight is held: the holder decides. */
  onIdle: (() => void) | undefined;
  private wake: (() => void) | undefined;
  /** Called once when the flight must take no more joiners (done, aborted, replay overflow). */
  onClosedToJoiners: (() => void) | undefined;
  private closedToJoiners = false;

  constructor(key: string, limits: FlightLimits) {
    this.key = key;
    this.limits = limits;
  }

  /** Fires when the last subscriber leaves before the flight is done: the upstream call must stop. */
  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  get joinable(): boolean {
    return !this.closedToJoiners && !this.abortController.signal.aborted;
  }

  get subscriberCount(): number {
    return this.subscriptions.size;
  }

  /**
   * Adds a client. Synchronous up to the returned promise: a joiner is registered, and has the
   * replay so far written to it, before any other event of the flight can run.
   */
  subscribe(sink: Sink): Promise<SubscriberOutcome> {
    return new Promise((resolve) => {
      const sub: Subscription = {
        sink,
        done: false,
        settle: (outcome) => {
          if (sub.done) return;
          sub.done = true;
          sink.off('close', sub.onClose);
          this.subscriptions.delete(sub);
          resolve(outcome);
          this.afterLeave();
        },
        onClose: () => {
          if (!sink.writableFinished) sub.settle({ kind: 'gone', reason: 'disconnected' });
        },
      };
      this.subscriptions.add(sub);
      this.joinedTotal++;
      sink.once('close', sub.onClose);
      if (this.head !== undefined) {
        this.writeHead(sub);
        for (const chunk of this.replay ?? []) this.writeChunk(sub, chunk);
      }
    });
  }

  /**
   * Keeps the flight running while nobody here listens (someone elsewhere does). The returned
   * release is idempotent; once every hold is released and no subscriber is left, the flight aborts.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.afterLeave();
    };
  }

  private afterLeave(): void {
    this.wake?.();
    if (this.subscriptions.size === 0 && this.state !== 'done') {
      if (this.holds > 0) {
        this.onIdle?.();
        return;
      }
      this.closeToJoiners();
      this.abortController.abort();
    }
  }

  private closeToJoiners(): void {
    if (this.closedToJoiners) return;
    this.closedToJoiners = true;
    this.onClosedToJoiners?.();
  }

  private writeHead(sub: Subscription): void {
    const head = this.head;
    if (head === undefined || sub.sink.headersSent) return;
    for (const [name, value] of head.headers) sub.sink.setHeader(name, value);
    sub.sink.writeHead(head.status);
    if (head.eventStream) sub.sink.flushHeaders();
  }

  private writeChunk(sub: Subscription, chunk: Buffer): void {
    if (sub.done) return;
    sub.sink.write(chunk);
    if (sub.sink.writableLength > this.limits.maxSubscriberBufferBytes && this.subscriptions.size > 1) this.dropSlow(sub);
  }

  /** A client that cannot keep up is cut loose alone; the others go on at their own pace. */
  private dropSlow(sub: Subscription): void {
    const sink = sub.sink;
    sub.settle({ kind: 'gone', reason: 'slow' });
    if (this.head?.eventStream === true) {
      const body = anthropicErrorBody(503, 'Client too slow: dropped from a shared stream to protect the others');
      sink.end(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
      const timer = setTimeout(() => sink.destroy(), SLOW_DROP_GRACE_MS);
      timer.unref();
      sink.once('close', () => clearTimeout(timer));
    } else {
      sink.destroy();
    }
  }

  /** Resolves when any subscriber can take more bytes, or the set of subscribers changed. */
  private async anyWritable(): Promise<void> {
    const subs = [...this.subscriptions];
    if (subs.length === 0 || subs.some((s) => !s.sink.writableNeedDrain)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.wake = undefined;
        for (const s of subs) s.sink.off('drain', done);
        resolve();
      };
      this.wake = done;
      for (const s of subs) s.sink.once('drain', done);
    });
  }

  /**
   * Runs the flight: `start` performs the upstream call (honouring `signal`) and resolves with its
   * head and body. Every subscriber, present or joining later, receives the result.
   */
  async run(start: (signal: AbortSignal) => Promise<FlightSource>): Promise<FlightOutcome> {
    let source: FlightSource;
    try {
      source = await start(this.abortController.signal);
    } catch (error) {
      this.state = 'done';
      this.closeToJoiners();
      for (const sub of [...this.subscriptions]) {
        if (this.abortController.signal.aborted) sub.settle({ kind: 'gone', reason: 'aborted' });
        else sub.settle({ kind: 'failed', error: error as GatewayError });
      }
      return { complete: false, head: undefined, error, subscribers: this.joinedTotal };
    }

    this.head = source.head;
    this.state = 'streaming';
    for (const sub of this.subscriptions) this.writeHead(sub);

    try {
      const onChunk = source.onChunk;
      for await (const chunk of source.body) {
        if (this.subscriptions.size === 0 && this.holds === 0) break;
        onChunk?.(chunk);
        if (this.replay !== undefined) {
          this.replayBytes += chunk.length;
          if (this.replayBytes > this.limits.maxReplayBytes) {
            this.replay = undefined;
            this.closeToJoiners();
          } else {
            this.replay.push(chunk);
          }
        }
        for (const sub of [...this.subscriptions]) this.writeChunk(sub, chunk);
        await this.anyWritable();
      }
    } catch (error) {
      this.state = 'done';
      this.closeToJoiners();
      this.failStreaming();
      return { complete: false, head: this.head, error, subscribers: this.joinedTotal };
    }
    const complete = this.subscriptions.size > 0 || !this.abortController.signal.aborted;
    this.state = 'done';
    this.closeToJoiners();
    for (const sub of [...this.subscriptions]) {
      sub.sink.end();
      sub.settle({ kind: 'served', complete: true });
    }
    return { complete, head: this.head, error: undefined, subscribers: this.joinedTotal };
  }

  /**
   * After bytes were sent nothing coherent can replace them: an event stream gets a final
   * Anthropic `error` event (the SDK raises it); any other body is cut so it cannot pass as whole.
   */
  private failStreaming(): void {
    for (const sub of [...this.subscriptions]) {
      if (this.head?.eventStream === true) {
        sub.sink.end(`event: error\ndata: ${JSON.stringify(anthropicErrorBody(502, 'Upstream stream was interrupted'))}\n\n`);
      } else {
        sub.sink.destroy();
      }
      sub.settle({ kind: 'served', complete: false });
    }
  }

  /** The replay of a finished flight, for lingering results; undefined when it was not kept whole. */
  finishedReplay(): { head: FlightHead; body: readonly Buffer[] } | undefined {
    if (this.state !== 'done' || this.head === undefined || this.replay === undefined) return undefined;
    return { head: this.head, body: this.replay };
  }
}
