import type { OutgoingHttpHeader } from 'node:http';
import type { GatewayError } from '../../core/errors.js';
import { anthropicErrorBody } from '../../core/errors.js';
import { newFacts, type CallFacts } from '../call/facts.js';
import { CallStop } from '../../core/call-stop.js';
import type { BodyReader } from '../../upstream/direct-body.js';
import { UPSTREAM_HEADER, type AnswerHeaders } from '../../upstream/header-list.js';

/**
 * One upstream call and everyone listening to it. A flight belongs to no single client: it runs
 * while at least one subscriber listens (or something holds it, e.g. followers on other instances)
 * and is aborted when the last one leaves.
 *
 * Ownership:
 * - Only the pump (`run`) appends to `chunks`, and writes `head`, `ending` and `state`.
 * - Each subscriber has its own cursor into `chunks` and is written at its own pace: a late joiner
 *   catches up from the replay with backpressure, never in one burst.
 * - The flight owns the call's per-call resources through its scope: every `finally` hook runs
 *   exactly once, when the call's outcome is known, each guarded so that none can throw out of
 *   the flight. `run` never rejects.
 *
 * Bounds and deadlines:
 * - `chunks` keeps the replay (at most `maxReplayBytes`) while the flight takes joiners; after
 *   that, only what lagging subscribers still need. A subscriber more than
 *   `maxReplayBytes + maxSubscriberBufferBytes` behind the newest byte is dropped alone.
 * - A subscriber whose socket takes no byte for `writeStallMs` while bytes wait for it is dropped
 *   alone, also when it is the only one: nothing a client does can pin a flight.
 * - The pump pulls the next upstream chunk while at least one subscriber can take it; a blocked
 *   subscriber is never waited for longer than its stall deadline.
 */

/** What a flight needs from a client response. node's ServerResponse satisfies it. */
export interface Sink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
  /**
   * The whole head at once, as a flat name/value list (node's fast path: nothing stored per header).
   * Nothing is sent yet: node sends the head with the first body write, in the same socket write.
   */
  writeHead(status: number, headers: OutgoingHttpHeader[]): unknown;
  /** Sends the head written by `writeHead` now, alone (an event stream's head when no byte goes with it). */
  flushHeaders(): void;
  write(chunk: Buffer | string): boolean;
  /**
   * Sends what was written now. node corks a response's socket at its first write of a tick and
   * sends on the next tick; uncorking after a flush sends before the observers (the meter's parse)
   * run, still in one socket write per flush. A no-op when nothing is corked.
   */
  uncork(): void;
  end(chunk?: Buffer | string): unknown;
  destroy(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

export interface FlightHead {
  status: number;
  /** The answer's headers, flat (upstream/header-list.ts: AnswerHeaders), as built once from undici's raw list. */
  headers: AnswerHeaders;
  eventStream: boolean;
  /** The upstream that served it: written as `x-gateway-upstream` right after `headers` (nothing copies the list to add it). */
  upstream?: string | undefined;
}

/** What the upstream gave the flight: a head and a body to pump. */
export interface FlightSource {
  head: FlightHead;
  body: AsyncIterable<Buffer> | Iterable<Buffer>;
}

/** Where a joinable flight is registered (FlightGroup); it leaves once it takes no more joiners. */
export interface FlightRegistry {
  forget(key: string, flight: Flight): void;
  /**
   * Asked when the last client of this flight left before its answer completed: true reserves
   * one of the group's bounded places for a flight waiting `rejoinMs` for an identical request
   * (COALESCE_REJOIN_MS); false (off, or every place taken) aborts the call as before.
   */
  reserveRejoin?(): boolean;
  /** Gives back a place `reserveRejoin` reserved (exactly once per reservation). */
  releaseRejoin?(): void;
}

export type SubscriberOutcome =
  /** The flight's answer was written to this subscriber; `complete` is false when the upstream failed mid-body. */
  | { kind: 'served'; complete: boolean }
  /** The flight failed before any byte reached this subscriber: the caller answers with this error. */
  | { kind: 'failed'; error: GatewayError }
  /** The client went away, or was dropped for being too slow or stalled. */
  | { kind: 'gone'; reason: 'disconnected' | 'slow' | 'stalled' | 'aborted' };

export interface FlightLimits {
  /** Bytes of body kept for late joiners; past it the flight stops taking joiners. */
  maxReplayBytes: number;
  /** Bytes a subscriber may fall behind beyond the replay window before it (alone) is dropped. */
  maxSubscriberBufferBytes: number;
  /** A subscriber whose socket takes nothing for this long while bytes wait for it is dropped. */
  writeStallMs: number;
  /**
   * COALESCE_REJOIN_MS: how long a joinable flight whose last client left before its answer
   * completed keeps its call for an identical request to join (with full replay); 0 = off (aborted
   * at once). Needs the registry's reservation (bounded).
   */
  rejoinMs?: number;
}

/** How the call ended, as every `finally` hook sees it. */
export interface CallOutcome {
  /** The answer's head, if one arrived. */
  head: FlightHead | undefined;
  /** Why the call failed (before the head, or mid-body); undefined when the body was received whole. */
  error: unknown;
  /** The whole body was received. */
  complete: boolean;
  /** Every listener left and the call was stopped: nobody's failure. */
  abandoned: boolean;
  /** Subscribers that joined over the flight's life. */
  subscribers: number;
}

/** A led flight's description, set once by the edge that leads it: never read on the request path. */
export interface FlightLabel {
  readonly mode: string;
  readonly model: string | undefined;
  /** The tenant's keyed hash (its id, never the credential). */
  readonly tenant: string | undefined;
  /** performance.now() when the leading request arrived. */
  readonly ledAt: number;
}

/** What the code running a flight's call gets: the call's signal, its facts and the flight's resource hooks. */
export interface CallScope {
  /** What the call learned on its way (pipeline/call/facts.ts names each field's writer). */
  readonly facts: CallFacts;
  /** Fires when nobody listens any more: the upstream call must stop (an AbortSignal, made on first use). */
  readonly signal: AbortSignal;
  /** The same stop, cheap: what undici's request takes as its `signal`. */
  readonly stop: CallStop;
  /**
   * Runs once, in order of registration, when the answer's head is known and before any subscriber
   * is written its head (each guarded); at once if it is already known. Never for a call that failed
   * before its head. What an observer registers here (`observe`, `finally`) joins the call as usual.
   */
  onHead(onHead: (head: FlightHead) => void): void;
  /** Sees every body chunk once, in order, right after the subscribers were handed it. Throwing fails the body. */
  observe(onChunk: (chunk: Buffer) => void): void;
  /** Runs once when the outcome is known: hooks in reverse order of registration, each guarded. */
  finally(onSettle: (outcome: CallOutcome) => void): void;
  /** Keeps the call running while held, even with no local subscriber. Returns the release. */
  hold(): () => void;
  /** Called (guarded) each time the last local subscriber leaves while the call is held: the holder decides. */
  onIdle(fn: () => void): void;
  /** Local subscribers listening now. */
  localListeners(): number;
}

/**
 * One client of a flight. Its two socket listeners are made once per subscriber (the flight's
 * methods do the work); `settle` is a method, not a closure.
 */
class Subscriber {
  /** Index (absolute, see `base`) of the next chunk to write. */
  next: number;
  /** Bytes written so far. */
  written = 0;
  /** The socket asked us to wait for `drain`. */
  blocked = false;
  stallTimer: NodeJS.Timeout | undefined = undefined;
  done = false;
  readonly onDrain: () => void;
  readonly onClose: () => void;

  constructor(
    readonly flight: Flight,
    readonly sink: Sink,
    next: number,
    readonly beforeHead: BeforeHead | undefined,
    private readonly resolve: (outcome: SubscriberOutcome) => void,
  ) {
    this.next = next;
    this.onDrain = () => flight.drained(this);
    this.onClose = () => {
      if (!sink.writableFinished) this.settle({ kind: 'gone', reason: 'disconnected' });
    };
  }

  /** Leaves the flight with this outcome (once). */
  settle(outcome: SubscriberOutcome): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.stallTimer);
    this.sink.off('close', this.onClose);
    this.sink.off('drain', this.onDrain);
    this.resolve(outcome);
    this.flight.left(this);
  }
}

/**
 * A body with node's Readable events (undici's body, a decoder, a provider translation): the pump
 * consumes it by events, pausing it while no subscriber can take more, instead of iterating it
 * (an async iterator costs promises and listeners per chunk).
 */
interface EventBody {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/** A body that pushes to one reader (upstream/direct-body.ts): no listeners, no stream. */
interface PushBody {
  pushTo(reader: BodyReader): void;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

function isPushBody(body: FlightSource['body']): body is FlightSource['body'] & PushBody {
  return typeof (body as Partial<PushBody>).pushTo === 'function';
}

function isEventBody(body: FlightSource['body']): body is FlightSource['body'] & EventBody {
  const b = body as Partial<EventBody>;
  return typeof b.on === 'function' && typeof b.pause === 'function' && typeof b.resume === 'function' && typeof b.destroy === 'function';
}

/** What async iteration reports for a body closed before its end (node's ERR_STREAM_PREMATURE_CLOSE). */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** How the pump's read of the body ended. */
interface BodyEnd {
  readonly error: unknown;
  readonly complete: boolean;
}

/** A read stopped because the call was stopped (nobody listens): nobody's failure. */
const STOPPED: BodyEnd = Object.freeze({ error: undefined, complete: false });

type Ending = { kind: 'complete' } | { kind: 'failed' };

/**
 * The flat name/value list every head is written from, one for the process: no list per answer. Safe
 * because node's writeHead reads it before returning (into the head's bytes, or into the response's
 * header table when headers were set before) and keeps no reference to it, and nothing runs between
 * filling it and writing it (the subscriber's own pairs are taken before). Emptied after each write.
 */
const HEAD_LIST: (OutgoingHttpHeader | undefined)[] = [];

/** Runs just before one subscriber's head is written; returns that client's own headers (flat name/value list), if any. */
export type BeforeHead = () => readonly string[] | undefined;

const SLOW_DROP_GRACE_MS = 30_000;

/** Logs hook failures instead of letting them escape; set once by the process (default: stderr). */
let reportHookError: (err: unknown) => void = (err) => {
  process.stderr.write(`claude-gateway: flight hook failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
};

export function onFlightHookError(report: (err: unknown) => void): void {
  reportHookError = report;
}

/** Reports a hook failure the way the flight does (for scopes that run hooks themselves: a discarded attempt). */
export function reportFlightHookError(err: unknown): void {
  reportHookError(err);
}

function sendHeadsAlone(flight: Flight): void {
  flight.sendHeadsAlone();
}

function guarded(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    reportHookError(err);
  }
}

export class Flight implements CallScope, BodyReader {
  readonly key: string;
  /** What the call learned (written by the call's interceptors; read by subscribers after their outcome). */
  readonly facts: CallFacts = newFacts();
  private readonly limits: FlightLimits;
  /** The call's stop: fires when nobody listens any more. */
  readonly stop = new CallStop();
  private readonly subscribers = new Set<Subscriber>();
  /** The one subscriber when there is exactly one (the common case): fan-out without iterating the set. */
  private lone: Subscriber | undefined;
  private holds = 0;
  private state: 'pending' | 'streaming' | 'done' = 'pending';
  private head: FlightHead | undefined;
  private ending: Ending | undefined;
  /** chunks[i] has absolute index base + i. */
  private chunks: Buffer[] = [];
  private base = 0;
  /** Bytes appended over the flight's life. */
  private total = 0;
  /** The chunks still hold the whole body (no byte was ever trimmed or refused for replay). */
  private replayWhole = true;
  private joinedTotal = 0;
  private wake: (() => void) | undefined;
  /** A push body being read (readPushed), and the end of that read. */
  private pushed: PushBody | undefined;
  private pushedEnd: ((end: BodyEnd) => void) | undefined;
  /** The push body was paused because no subscriber could take more. */
  private pushPaused = false;
  private observers: ((chunk: Buffer) => void)[] = [];
  /** Made on first use, one element at a time: a call usually has one head hook (the meter's). */
  private headHooks: ((head: FlightHead) => void)[] | undefined;
  private settleHooks: ((outcome: CallOutcome) => void)[] = [];
  private idleHooks: (() => void)[] = [];
  private closedToJoiners = false;
  /** Set while nobody listens and the flight waits for a rejoin (COALESCE_REJOIN_MS): its place is reserved in the registry. */
  private rejoinTimer: NodeJS.Timeout | undefined;
  /** Told once when the flight must take no more joiners (done, aborted, replay overflow): the group it is registered in. */
  private readonly registry: FlightRegistry | undefined;
  /** What the edge that leads the flight knows of it (set once, when it leads): for the console's Live flights page. */
  label: FlightLabel | undefined;

  constructor(key: string, limits: FlightLimits, registry?: FlightRegistry) {
    this.key = key;
    this.limits = limits;
    this.registry = registry;
  }

  /** Fires when nobody listens any more (the call's signal). */
  get signal(): AbortSignal {
    return this.stop.signal;
  }

  get joinable(): boolean {
    return !this.closedToJoiners;
  }

  /** The answer's head once it arrived (every subscriber gets this one). */
  get answerHead(): FlightHead | undefined {
    return this.head;
  }

  /** Body bytes the flight received so far (for the console; not the bytes kept). */
  get bytesSoFar(): number {
    return this.total;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Bytes kept for subscribers and late joiners right now (for tests and gauges). */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  /**
   * Adds a client. Synchronous up to the returned promise: a joiner is registered, and has as much
   * of the replay as its socket takes written to it, before any other event of the flight can run.
   * `beforeHead` runs just before this subscriber's head is written and returns its per-client headers.
   */
  subscribe(sink: Sink, beforeHead?: BeforeHead): Promise<SubscriberOutcome> {
    return new Promise((resolve) => {
      const sub = new Subscriber(this, sink, this.base, beforeHead, resolve);
      this.subscribers.add(sub);
      this.lone = this.subscribers.size === 1 ? sub : undefined;
      this.joinedTotal++;
      // A rejoin: the call goes on for this client. A finished answer kept for the window stays until it ends.
      if (this.state !== 'done') this.endRejoinWait();
      sink.once('close', sub.onClose);
      if (this.head !== undefined) {
        this.writeHead(sub);
        this.flush(sub);
        this.sendHeadAlone(sub);
      }
    });
  }

  /** `sub` settled (Subscriber.settle): it leaves the set. Called by Subscriber only. */
  left(sub: Subscriber): void {
    this.subscribers.delete(sub);
    this.lone = undefined;
    if (this.subscribers.size === 1) for (const only of this.subscribers) this.lone = only;
    this.afterLeave();
  }

  /** `sub`'s socket drained: write what it waits for, and let the pump go on. Called by Subscriber only. */
  drained(sub: Subscriber): void {
    sub.blocked = false;
    clearTimeout(sub.stallTimer);
    sub.stallTimer = undefined;
    this.flush(sub);
    this.wakePump();
  }

  private afterLeave(): void {
    this.wakePump();
    this.trim();
    if (this.subscribers.size > 0 || this.state === 'done') return;
    if (this.holds > 0) {
      for (const idle of this.idleHooks) guarded(idle);
      return;
    }
    if (this.waitForRejoin()) return;
    this.closeToJoiners();
    this.stop.abort();
  }

  /**
   * Nobody listens, the answer is not complete: with COALESCE_REJOIN_MS on, the call goes on for
   * that long (its replay whole, its place reserved) so that a retry of the same request joins it
   * instead of paying for a second call. False when off, closed to joiners (the replay overflowed:
   * a rejoiner could not be given every byte) or every place is taken: then aborted as before.
   */
  private waitForRejoin(): boolean {
    if (this.rejoinTimer !== undefined) return true;
    const ms = this.limits.rejoinMs ?? 0;
    if (ms <= 0 || this.closedToJoiners || this.registry?.reserveRejoin?.() !== true) return false;
    this.rejoinTimer = setTimeout(() => this.rejoinExpired(), ms);
    this.rejoinTimer.unref();
    return true;
  }

  private endRejoinWait(): void {
    if (this.rejoinTimer === undefined) return;
    clearTimeout(this.rejoinTimer);
    this.rejoinTimer = undefined;
    guarded(() => this.registry?.releaseRejoin?.());
  }

  /** The window ended without a rejoin: a call still running is aborted; a finished answer kept for the window goes. */
  private rejoinExpired(): void {
    this.endRejoinWait();
    this.closeToJoiners();
    if (this.state !== 'done' && this.holds === 0) this.stop.abort();
  }

  private closeToJoiners(): void {
    if (this.closedToJoiners) return;
    this.closedToJoiners = true;
    this.trim();
    try {
      this.registry?.forget(this.key, this);
    } catch (err) {
      reportHookError(err);
    }
  }

  /** Each subscriber's event-stream head that no chunk took along (see sendHeadAlone). */
  sendHeadsAlone(): void {
    if (this.lone !== undefined) this.sendHeadAlone(this.lone);
    else for (const sub of this.subscribers) this.sendHeadAlone(sub);
  }

  private writeHead(sub: Subscriber): void {
    const head = this.head;
    if (head === undefined || sub.sink.headersSent) return;
    let own: readonly string[] | undefined;
    const before = sub.beforeHead;
    if (before !== undefined) {
      // guarded(), without a closure per head.
      try {
        own = before();
      } catch (err) {
        reportHookError(err);
      }
    }
    // The answer's headers, its upstream, then this client's own, in the one reused list (see HEAD_LIST).
    const headers = head.headers;
    const upstream = head.upstream;
    const ownLength = own === undefined ? 0 : own.length;
    const count = headers.length;
    const flat = HEAD_LIST;
    flat.length = count + (upstream === undefined ? 0 : 2) + ownLength;
    // node only reads the values (readonly in practice).
    for (let i = 0; i < count; i++) flat[i] = headers[i] as string | string[];
    let at = count;
    if (upstream !== undefined) {
      flat[at++] = UPSTREAM_HEADER;
      flat[at++] = upstream;
    }
    for (let i = 0; i < ownLength; i++) flat[at++] = (own as readonly string[])[i];
    try {
      // Every index below its length was just filled.
      sub.sink.writeHead(head.status, flat as OutgoingHttpHeader[]);
    } finally {
      // Holds no answer's values until the next head (length kept: no new backing store next time).
      flat.fill(undefined);
    }
  }

  /**
   * An event stream's head goes out at once when no byte went with it: the client learns the
   * answer has started before the first event. When a chunk was written, node sent the head in
   * that chunk's socket write, so the head costs no write (and no loopback wake-up) of its own.
   */
  private sendHeadAlone(sub: Subscriber): void {
    if (this.head?.eventStream === true && !sub.done && sub.written === 0) sub.sink.flushHeaders();
  }

  /**
   * Writes what `sub` has not had yet, until its socket asks to wait; then arms its stall deadline.
   * Ends it when it has everything and the flight is over. Invariant afterwards: `sub` is blocked,
   * caught up, or gone.
   */
  private flush(sub: Subscriber): void {
    if (sub.done || sub.blocked || this.head === undefined) return;
    const end = this.base + this.chunks.length;
    if (sub.next === end) {
      if (this.ending !== undefined) this.finish(sub);
      return;
    }
    while (sub.next < end) {
      const chunk = this.chunks[sub.next - this.base] as Buffer;
      sub.next++;
      sub.written += chunk.length;
      if (!sub.sink.write(chunk)) {
        sub.sink.uncork();
        sub.blocked = true;
        sub.sink.once('drain', sub.onDrain);
        this.armStall(sub);
        return;
      }
    }
    // What this flush wrote goes out now, in one socket write (see Sink.uncork).
    sub.sink.uncork();
    if (this.ending !== undefined) this.finish(sub);
  }

  private armStall(sub: Subscriber): void {
    clearTimeout(sub.stallTimer);
    sub.stallTimer = setTimeout(() => this.drop(sub, 'stalled'), this.limits.writeStallMs);
    sub.stallTimer.unref();
  }

  /** A subscriber that has every byte: end its answer the way the flight ended. */
  private finish(sub: Subscriber): void {
    if (this.ending?.kind === 'complete') {
      sub.sink.end();
      sub.settle({ kind: 'served', complete: true });
      return;
    }
    // After bytes were sent nothing coherent can replace them: an event stream gets a final
    // Anthropic `error` event (the SDK raises it); any other body is cut so it cannot pass as whole.
    if (this.head?.eventStream === true) {
      sub.sink.end(`event: error\ndata: ${JSON.stringify(anthropicErrorBody(502, 'Upstream stream was interrupted'))}\n\n`);
    } else {
      sub.sink.destroy();
    }
    sub.settle({ kind: 'served', complete: false });
  }

  /** A client that cannot keep up, or takes nothing at all, is cut loose alone; the others go on. */
  private drop(sub: Subscriber, reason: 'slow' | 'stalled'): void {
    if (sub.done) return;
    const sink = sub.sink;
    sub.settle({ kind: 'gone', reason });
    if (this.head?.eventStream === true && reason === 'slow') {
      const message = 'Client too slow: dropped from a shared stream to protect the others';
      sink.end(`event: error\ndata: ${JSON.stringify(anthropicErrorBody(503, message))}\n\n`);
      const timer = setTimeout(() => sink.destroy(), Math.min(SLOW_DROP_GRACE_MS, this.limits.writeStallMs));
      timer.unref();
      sink.once('close', () => clearTimeout(timer));
    } else {
      // A stalled socket takes nothing, not even an error event: free it now.
      sink.destroy();
    }
  }

  /**
   * While streaming and closed to joiners, drops the chunks below the slowest cursor. A finished
   * flight keeps its chunks (for caching, and for lagging subscribers) until it is unreachable.
   */
  private trim(): void {
    if (!this.closedToJoiners || this.state !== 'streaming') return;
    let min = this.base + this.chunks.length;
    for (const sub of this.subscribers) if (sub.next < min) min = sub.next;
    const drop = min - this.base;
    if (drop <= 0) return;
    this.chunks = drop >= this.chunks.length ? [] : this.chunks.slice(drop);
    this.base = min;
    this.replayWhole = false;
  }

  private append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
    if (!this.closedToJoiners && this.total > this.limits.maxReplayBytes) {
      this.closeToJoiners();
      // Waiting for a rejoin that can no longer be served whole: nobody listens, stop now.
      if (this.rejoinTimer !== undefined) {
        this.endRejoinWait();
        if (this.subscribers.size === 0 && this.holds === 0) this.stop.abort();
      }
    }
    const lagLimit = this.limits.maxReplayBytes + this.limits.maxSubscriberBufferBytes;
    const lone = this.lone;
    if (lone !== undefined) {
      if (this.total - lone.written > lagLimit) this.drop(lone, 'slow');
      else this.flush(lone);
    } else if (this.subscribers.size > 0) {
      // A copy: writing may settle subscribers (and so change the set) on the way.
      for (const sub of [...this.subscribers]) {
        if (this.total - sub.written > lagLimit) this.drop(sub, 'slow');
        else this.flush(sub);
      }
    }
    this.trim();
  }

  /** Whether the pump may read on: nobody listens locally (a hold), or some subscriber can take more. */
  private mayRead(): boolean {
    const lone = this.lone;
    if (lone !== undefined) return !lone.blocked;
    if (this.subscribers.size === 0) return true;
    for (const sub of this.subscribers) if (!sub.blocked) return true;
    return false;
  }

  /** A subscriber can take more, or the set of subscribers changed: the pump goes on (it checks again at the next chunk). */
  private wakePump(): void {
    if (this.pushPaused) {
      this.pushPaused = false;
      this.pushed?.resume();
      return;
    }
    this.wake?.();
  }

  /** Resolves when a subscriber can take more bytes, or the set of subscribers changed. */
  private async anyReady(): Promise<void> {
    if (this.mayRead()) return;
    await new Promise<void>((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  // The call's scope (CallScope) is the flight itself, seen through that interface: one object, no
  // closures or copies per call.

  onHead(onHead: (head: FlightHead) => void): void {
    const head = this.head;
    if (head !== undefined) guarded(() => onHead(head));
    else if (this.headHooks === undefined) this.headHooks = [onHead];
    else this.headHooks.push(onHead);
  }

  observe(onChunk: (chunk: Buffer) => void): void {
    this.observers.push(onChunk);
  }

  finally(onSettle: (outcome: CallOutcome) => void): void {
    this.settleHooks.push(onSettle);
  }

  onIdle(fn: () => void): void {
    this.idleHooks.push(fn);
  }

  localListeners(): number {
    return this.subscribers.size;
  }

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

  /**
   * Runs the flight: `start` performs the upstream call (honouring `scope.signal`) and resolves
   * with its head and body. Every subscriber, present or joining later, receives the result.
   * Resolves with the outcome once the upstream part is over (lagging subscribers may still be
   * catching up from the kept chunks); never rejects.
   */
  async run(start: (scope: CallScope) => Promise<FlightSource>): Promise<CallOutcome> {
    let outcome: CallOutcome;
    try {
      outcome = await this.pump(start);
    } catch (err) {
      // Unreachable by construction (pump catches); kept so that `run` cannot reject.
      outcome = { head: this.head, error: err, complete: false, abandoned: false, subscribers: this.joinedTotal };
    }
    const hooks = this.settleHooks;
    this.settleHooks = [];
    for (let i = hooks.length - 1; i >= 0; i--) {
      const hook = hooks[i] as (o: CallOutcome) => void;
      guarded(() => hook(outcome));
    }
    return outcome;
  }

  private async pump(start: (scope: CallScope) => Promise<FlightSource>): Promise<CallOutcome> {
    const signal = this.stop;
    let source: FlightSource;
    try {
      source = await start(this);
    } catch (error) {
      this.state = 'done';
      this.endRejoinWait();
      this.closeToJoiners();
      for (const sub of [...this.subscribers]) {
        if (signal.aborted) sub.settle({ kind: 'gone', reason: 'aborted' });
        else sub.settle({ kind: 'failed', error: error as GatewayError });
      }
      return { head: undefined, error, complete: false, abandoned: signal.aborted, subscribers: this.joinedTotal };
    }

    const head = source.head;
    const headHooks = this.headHooks;
    if (headHooks !== undefined) {
      // Guarded like every hook, without a closure each; a hook registered by one of these runs too.
      for (const onHead of headHooks) {
        try {
          onHead(head);
        } catch (err) {
          reportHookError(err);
        }
      }
      this.headHooks = undefined;
    }
    this.head = head;
    this.state = 'streaming';
    if (this.lone !== undefined) this.writeHead(this.lone);
    else for (const sub of [...this.subscribers]) this.writeHead(sub);

    const body = source.body;
    const reading = isPushBody(body) ? this.readPushed(body) : isEventBody(body) ? this.readEvents(body) : this.iterate(body);
    // After the read's first delivery, which it queued first (what came with the head is written
    // on that tick, the head with it): a head with no byte behind it yet is sent alone.
    process.nextTick(sendHeadsAlone, this);
    const { error, complete } = await reading;
    this.state = 'done';
    this.ending = complete ? { kind: 'complete' } : { kind: 'failed' };
    // A complete answer that finished while the flight waited for a rejoin stays joinable (whole
    // replay) until the window ends: the retry still gets it without a call of its own.
    // (Waiting implies open to joiners, so the replay is whole.)
    if (!complete || this.rejoinTimer === undefined) {
      this.endRejoinWait();
      this.closeToJoiners();
    }
    if (this.lone !== undefined) this.flush(this.lone);
    else for (const sub of [...this.subscribers]) this.flush(sub);
    // A body that stopped early (abandoned, or failed) was closed by the read (destroy, or for-await's return()).
    const abandoned = !complete && signal.aborted;
    return { head: this.head, error, complete, abandoned, subscribers: this.joinedTotal };
  }

  /**
   * One chunk of an event- or push-driven read: to the clients first, then the observers (see
   * iterate). How the read ends when it must stop now (the call was stopped, or an observer threw:
   * the caller destroys the body), else undefined (`mayRead` then says whether to pause).
   */
  private take(chunk: Buffer): BodyEnd | undefined {
    if (this.stop.aborted) return STOPPED;
    try {
      this.append(chunk);
      for (const observe of this.observers) observe(chunk);
    } catch (err) {
      return { error: err, complete: false };
    }
    return undefined;
  }

  /**
   * Reads a push body (an `anthropic` answer straight from undici's handler): the flight itself is its
   * reader (`bodyData`, `bodyEnd`), so the read costs one promise and no closure per call. Same order,
   * pause and end rules as `readEvents`.
   */
  private readPushed(body: PushBody): Promise<BodyEnd> {
    return new Promise((resolve) => {
      this.pushed = body;
      this.pushedEnd = resolve;
      body.pushTo(this);
    });
  }

  /** One chunk of the push body (BodyReader; called by the body only). */
  bodyData(chunk: Buffer): void {
    const body = this.pushed;
    if (body === undefined) return;
    const ended = this.take(chunk);
    if (ended !== undefined) {
      this.endPushed(ended.error, ended.complete);
      body.destroy();
      return;
    }
    if (!this.mayRead()) {
      body.pause();
      this.pushPaused = true;
    }
  }

  /** The push body's end (BodyReader; called by the body only, once). */
  bodyEnd(error: Error | undefined): void {
    this.endPushed(error, error === undefined && !this.stop.aborted);
  }

  private endPushed(error: unknown, complete: boolean): void {
    const resolve = this.pushedEnd;
    if (resolve === undefined) return;
    this.pushedEnd = undefined;
    this.pushed = undefined;
    this.pushPaused = false;
    resolve({ error, complete });
  }

  /**
   * Reads a Readable body by its events: each chunk goes to the subscribers, then to the observers;
   * the body is paused while no subscriber can take more and resumed when one can (a drain, or the
   * set of subscribers changed). Ends as async iteration would: complete at 'end' unless the call
   * was stopped; an error, or a close before the end, fails it; the body is destroyed when the read
   * stops early. One promise and four listeners per call, nothing per chunk.
   */
  private readEvents(body: EventBody): Promise<BodyEnd> {
    const stop = this.stop;
    return new Promise((resolve) => {
      let over = false;
      const end = (error: unknown, complete: boolean): void => {
        if (over) return;
        over = true;
        this.wake = undefined;
        resolve({ error, complete });
      };
      const resume = (): void => {
        this.wake = undefined;
        if (!over) body.resume();
      };
      body.on('data', (chunk) => {
        if (over) return;
        const ended = this.take(chunk);
        if (ended !== undefined) {
          end(ended.error, ended.complete);
          body.destroy();
          return;
        }
        if (!this.mayRead()) {
          body.pause();
          this.wake = resume;
        }
      });
      body.on('end', () => end(undefined, !stop.aborted));
      // Stays attached after the end: a late error of a destroyed body is nobody's.
      body.on('error', (err) => end(err, false));
      body.on('close', () => end(prematureClose(), false));
    });
  }

  /** Reads any other body (a rewritten answer, a peeked stream, a relay) by async iteration. */
  private async iterate(body: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<BodyEnd> {
    const stop = this.stop;
    try {
      const observers = this.observers;
      for await (const chunk of body) {
        if (stop.aborted) break;
        // Clients first, then the observers (usage meter, cross-instance publisher): parsing a stream
        // event is off the path of its bytes to the clients. An observer that throws (an event past
        // MAX_SSE_EVENT_BYTES) still ends the flight; chunks never align with events, so clients could
        // already hold the start of that event either way.
        this.append(chunk);
        for (const observe of observers) observe(chunk);
        await this.anyReady();
      }
      return { error: undefined, complete: !stop.aborted };
    } catch (err) {
      return { error: err, complete: false };
    }
  }

  /** The whole answer of a finished, complete flight (for caching and lingering); undefined when not kept whole. */
  finishedReplay(): { head: FlightHead; body: readonly Buffer[] } | undefined {
    if (this.state !== 'done' || this.ending?.kind !== 'complete' || this.head === undefined) return undefined;
    if (!this.replayWhole || this.base !== 0 || this.total > this.limits.maxReplayBytes) return undefined;
    return { head: this.head, body: this.chunks };
  }
}
