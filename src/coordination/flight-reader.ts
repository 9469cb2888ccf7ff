import { ERRORS, GatewayError, isErrorCode } from '../core/errors.js';
import { ENTRY, REMOTE_FALLBACK_CODE, WHOLE_END, type PublishedError } from './flight-stream.js';
import { evalArgs, FOLLOWER_HEARTBEAT, type FlightKeys } from './flight-keys.js';
import type { RedisDomain } from './redis.js';

/**
 * One multiplexed reader for every remote flight this instance follows: a single Redis connection
 * (its own failure domain), never one per follow. On a single server each round is one
 * `XREAD BLOCK` over all followed streams plus this instance's wake stream (a new follow XADDs to it,
 * so it is read at once); on a Cluster, whose XREAD cannot span slots, each round reads every stream
 * without blocking and then waits `pollMs` or for a new follow.
 *
 * Deadlines: a round that does not answer within `blockMs + commandTimeoutMs` (a partition, a
 * stopped server) fails every follow at once. Liveness: every `heartbeatMs` each follow renews its
 * listener entry and checks that the leader still holds the claim; once it does not, the stream is
 * read to its end and a follow that found no terminal entry fails ("leader gone").
 *
 * Continuity: entry ids are 0-<seq>; an entry whose seq is not the previous one plus one fails the
 * follow (a publish was lost), so a follower's body is every byte in order or an error.
 */

export interface ReaderOptions {
  blockMs: number;
  pollMs: number;
  heartbeatMs: number;
  listenerTtlMs: number;
  /** Bytes queued for one follow before the reader stops reading its stream until it drains. */
  maxQueuedBytes: number;
  cluster: boolean;
  wakeKey: string;
}

export type FollowEvent =
  | { kind: 'head'; data: string }
  | { kind: 'chunk'; data: Buffer }
  /** `whole`: the leader's verdict that its answer may be reused (WHOLE_END). */
  | { kind: 'end'; whole: boolean }
  | { kind: 'error'; error: PublishedError };

export class FollowFailure extends Error {
  constructor(
    message: string,
    /** The leader is gone (released or lost its claim) without having sent an end: a successor may lead. */
    readonly leaderGone: boolean,
  ) {
    super(message);
  }
}

/** One followed flight: what the reader found so far, consumed by exactly one reader of `next`. */
export class Follow {
  private readonly queue: FollowEvent[] = [];
  private queuedBytes = 0;
  private failure: FollowFailure | undefined;
  private waiter: (() => void) | undefined;
  lastSeq = 0;
  /** Set by a heartbeat that found the claim no longer names this flight. */
  claimGone = false;
  terminal = false;
  closed = false;

  constructor(
    readonly keys: FlightKeys,
    readonly flightId: string,
    readonly followerId: string,
    private readonly reader: FlightReader,
  ) {}

  get streamKey(): string {
    return this.keys.stream(this.flightId);
  }

  get listenersKey(): string {
    return this.keys.listeners(this.flightId);
  }

  /** Nothing more to read for it: it ended, failed or was closed. */
  get settled(): boolean {
    return this.closed || this.terminal || this.failure !== undefined;
  }

  get backlogged(): boolean {
    return this.queuedBytes > this.reader.options.maxQueuedBytes;
  }

  push(event: FollowEvent): void {
    if (this.closed || this.failure !== undefined) return;
    if (event.kind === 'end' || event.kind === 'error') this.terminal = true;
    this.queuedBytes += event.kind === 'chunk' ? event.data.length : 0;
    this.queue.push(event);
    this.wake();
  }

  fail(failure: FollowFailure): void {
    if (this.closed || this.terminal || this.failure !== undefined) return;
    this.failure = failure;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next event, in order; throws the follow's failure once the queue before it is consumed. */
  async next(signal: AbortSignal): Promise<FollowEvent> {
    for (;;) {
      const event = this.queue.shift();
      if (event !== undefined) {
        if (event.kind === 'chunk') {
          const wasBacklogged = this.backlogged;
          this.queuedBytes -= event.data.length;
          if (wasBacklogged && this.queuedBytes <= this.reader.options.maxQueuedBytes) this.reader.wake();
        }
        return event;
      }
      if (this.failure !== undefined) throw this.failure;
      if (signal.aborted) throw new FollowFailure('The follower\'s clients left', false);
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiter = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Stops following: the reader forgets it and its listener entry is removed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.remove(this);
  }
}

type XReadReply = [string, [string, string[]][]][] | null;

export class FlightReader {
  private readonly follows = new Set<Follow>();
  private running = false;
  private wakeId = '0-0';
  private lastHeartbeat = 0;
  private idleWake: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly connection: RedisDomain,
    private readonly commands: RedisDomain,
    readonly options: ReaderOptions,
    private readonly onCountChange: (delta: number) => void,
  ) {}

  get size(): number {
    return this.follows.size;
  }

  /** Starts reading `follow`'s stream from its beginning. */
  add(follow: Follow): void {
    this.follows.add(follow);
    this.onCountChange(1);
    this.wake();
    if (!this.options.cluster) {
      // Interrupts a blocked round so the new stream is read now, not after `blockMs`.
      void this.commands.run(this.options.wakeKey, ['XADD', this.options.wakeKey, 'MAXLEN', '~', '32', '*', 'w', '1']);
      void this.commands.run(this.options.wakeKey, ['PEXPIRE', this.options.wakeKey, '600000']);
    }
    if (!this.running) void this.loop();
  }

  remove(follow: Follow): void {
    if (!this.follows.delete(follow)) return;
    this.onCountChange(-1);
    this.wake();
    void this.commands.run(follow.keys.claim, ['ZREM', follow.listenersKey, follow.followerId]);
  }

  /** Ends a wait between rounds (a new follow, a drained backlog). */
  wake(): void {
    const w = this.idleWake;
    this.idleWake = undefined;
    w?.();
  }

  private failAll(message: string): void {
    for (const follow of [...this.follows]) follow.fail(new FollowFailure(message, false));
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.follows.size > 0 && !this.closed) {
        if (!this.connection.available) {
          this.failAll('Lost Redis while following a shared upstream call');
          // Failed follows stay until their consumers close them (remove() wakes this wait).
          await this.idle(this.options.heartbeatMs);
          continue;
        }
        await this.heartbeats();
        const active = [...this.follows].filter((f) => !f.backlogged && !f.settled);
        if (active.length === 0) {
          await this.idle(this.options.heartbeatMs);
          continue;
        }
        let replies: Map<string, [string, string[]][]>;
        try {
          replies = this.options.cluster ? await this.readEach(active) : await this.readBlocking(active);
        } catch {
          this.failAll('Lost Redis while following a shared upstream call');
          await this.idle(this.options.heartbeatMs);
          continue;
        }
        let any = false;
        for (const follow of active) {
          const entries = replies.get(follow.streamKey);
          if (entries !== undefined && entries.length > 0) {
            any = true;
            this.deliver(follow, entries);
          } else if (follow.claimGone && !follow.terminal) {
            // The claim went and the stream holds nothing more: the leader stopped without an end.
            follow.fail(new FollowFailure('The instance leading this shared call stopped before finishing it', true));
          }
        }
        if (this.options.cluster && !any) await this.idle(this.options.pollMs);
      }
    } finally {
      this.running = false;
    }
    if (this.follows.size > 0 && !this.closed) void this.loop();
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.idleWake = undefined;
        resolve();
      }, ms);
      this.idleWake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async readBlocking(active: Follow[]): Promise<Map<string, [string, string[]][]>> {
    const keys = [...active.map((f) => f.streamKey), this.options.wakeKey];
    const ids = [...active.map((f) => `0-${f.lastSeq}`), this.wakeId];
    const block = this.heartbeatDue() ? 1 : this.options.blockMs;
    const reply = await this.connection.send<XReadReply>(this.options.wakeKey, ['XREAD', 'COUNT', '32', 'BLOCK', String(block), 'STREAMS', ...keys, ...ids], block + this.connection.options.commandTimeoutMs);
    const out = new Map<string, [string, string[]][]>();
    for (const [key, entries] of reply ?? []) {
      if (key === this.options.wakeKey) {
        const last = entries[entries.length - 1];
        if (last !== undefined) this.wakeId = last[0];
      } else out.set(key, entries);
    }
    return out;
  }

  private async readEach(active: Follow[]): Promise<Map<string, [string, string[]][]>> {
    const out = new Map<string, [string, string[]][]>();
    await Promise.all(
      active.map(async (f) => {
        const reply = await this.connection.send<XReadReply>(f.streamKey, ['XREAD', 'COUNT', '32', 'STREAMS', f.streamKey, `0-${f.lastSeq}`]);
        const entries = reply?.[0]?.[1];
        if (entries !== undefined) out.set(f.streamKey, entries);
      }),
    );
    return out;
  }

  private heartbeatDue(): boolean {
    return Date.now() - this.lastHeartbeat >= this.options.heartbeatMs;
  }

  /** Renews every follow's listener entry and learns which leaders are gone. */
  private async heartbeats(): Promise<void> {
    if (!this.heartbeatDue()) return;
    this.lastHeartbeat = Date.now();
    await Promise.all(
      [...this.follows].map(async (f) => {
        if (f.claimGone || f.settled) return;
        try {
          const held = await this.commands.send<number>(f.keys.claim, evalArgs(FOLLOWER_HEARTBEAT, [f.keys.claim, f.listenersKey], [f.flightId, f.followerId, this.options.listenerTtlMs]));
          if (held === 0) f.claimGone = true;
        } catch {
          f.fail(new FollowFailure('Lost Redis while following a shared upstream call', false));
        }
      }),
    );
  }

  private deliver(follow: Follow, entries: [string, string[]][]): void {
    for (const [id, fields] of entries) {
      const seq = Number(id.slice(id.indexOf('-') + 1));
      if (seq !== follow.lastSeq + 1) {
        follow.fail(new FollowFailure(`A part of the shared answer was lost (expected entry ${follow.lastSeq + 1}, got ${seq})`, false));
        return;
      }
      follow.lastSeq = seq;
      let type = '';
      let data = '';
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === 't') type = fields[i + 1] as string;
        else if (fields[i] === 'd') data = fields[i + 1] as string;
      }
      if (type === ENTRY.head) follow.push({ kind: 'head', data });
      else if (type === ENTRY.chunk) follow.push({ kind: 'chunk', data: Buffer.from(data, 'base64') });
      else if (type === ENTRY.end) follow.push({ kind: 'end', whole: data === WHOLE_END });
      else follow.push({ kind: 'error', error: parseError(data) });
    }
  }

  close(): void {
    this.closed = true;
    this.failAll('This gateway is shutting down');
    this.wake();
  }
}

function parseError(raw: string): PublishedError {
  try {
    const e = JSON.parse(raw) as PublishedError;
    if (typeof e.code === 'string' && typeof e.status === 'number' && typeof e.message === 'string') return e;
  } catch {
    // fall through
  }
  return { code: REMOTE_FALLBACK_CODE, status: ERRORS[REMOTE_FALLBACK_CODE].status, message: 'Shared upstream call failed' };
}

/**
 * A published error back as a GatewayError. The code comes from Redis, so it passes `isErrorCode`
 * (an unknown one becomes REMOTE_FALLBACK_CODE); the status is the code's own (ERRORS), never the
 * published number.
 */
export function toGatewayError(e: PublishedError): GatewayError {
  return new GatewayError(isErrorCode(e.code) ? e.code : REMOTE_FALLBACK_CODE, e.message);
}
