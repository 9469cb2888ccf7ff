import { ERRORS, GatewayError } from '../core/errors.js';
import type { FlightHead } from '../pipeline/coalesce/flight.js';
import type { SharedPublisher } from '../pipeline/coalesce/shared-flights.js';
import { evalArgs, FlightKeys, LEADER_HEARTBEAT, PUBLISH, RELEASE, RELEASE_UNLESS_LISTENED } from './flight-keys.js';
import { ENTRY, REMOTE_FALLBACK_CODE, WHOLE_END, type PublishedError } from './flight-stream.js';
import type { RemoteFlightGauges, RemoteFlightOptions } from './remote-flight-options.js';
import type { RedisDomain } from './redis.js';
import { wireHead } from './wire-head.js';

/** Raw body bytes in one published entry at most (chunks that queue up are merged up to it). */
const MAX_ENTRY_BYTES = 512 * 1024;
/** Publishes pipelined at once; later chunks wait (and merge) in the outbox. */
const MAX_IN_FLIGHT = 4;

/**
 * The leading instance's side of a cross-instance flight. Publishes head, chunks and one terminal
 * entry, each with the next sequence number, without ever slowing the local clients: entries are
 * queued (bounded) and stored in order, a few in flight at once; the claim is released only after the
 * terminal entry is stored, so a follower that sees the claim gone can trust the stream. Publishing is not best-effort, though:
 * the first publish that fails (or a backlog past `maxPendingBytes`) makes the flight `broken`:
 * nothing more is published, an error entry is attempted and the claim released, and followers fail
 * explicitly (error entry, sequence gap, or a released claim without an end). Never a quiet hole.
 *
 * Ownership: all fields are written by the leader's pump (synchronous calls) and by the heartbeat
 * timer's callbacks; nothing else touches them.
 */
export class RedisFlightPublisher implements SharedPublisher {
  private readonly streamKey: string;
  private readonly listenersKey: string;
  private heartbeat: NodeJS.Timeout | undefined;
  private seq = 0;
  private bytes = 0;
  /** Bytes accepted and not yet stored in Redis (bounded by maxPendingBytes). */
  private pendingBytes = 0;
  /** No more input: end, fail, abandon or broken happened. */
  private finished = false;
  private broken = false;
  /** remote_flight_publishers was decremented for this flight (once: at the claim's release or abandon). */
  private unpublished = false;
  private closedToJoiners = false;
  private listeners = 0;
  private listening = false;
  private onListeners: ((listening: boolean) => void) | undefined;
  /** Entries not sent yet, oldest first (chunks among them may still be merged). */
  private readonly outbox: { type: string; data: Buffer | string }[] = [];
  /** Publishes sent and not yet acknowledged (at most MAX_IN_FLIGHT). */
  private inFlight = 0;

  constructor(
    private readonly redis: RedisDomain,
    private readonly keys: FlightKeys,
    private readonly flightId: string,
    private readonly options: RemoteFlightOptions,
    private readonly gauges: RemoteFlightGauges,
    readonly takeover: boolean,
  ) {
    this.streamKey = keys.stream(flightId);
    this.listenersKey = keys.listeners(flightId);
    this.gauges.publishers.inc();
    this.heartbeat = setInterval(() => void this.beat(), Math.max(20, Math.floor(options.claimTtlMs / 3)));
    this.heartbeat.unref();
  }

  /** Compare-and-pexpire the claim and read the live listener count. */
  private async beat(): Promise<void> {
    let n: number;
    try {
      n = await this.redis.send<number>(this.keys.claim, evalArgs(LEADER_HEARTBEAT, [this.keys.claim, this.listenersKey], [this.flightId, this.options.claimTtlMs]));
    } catch {
      return; // the claim lives until its TTL; followers fail on their own deadlines if this persists
    }
    if (n < 0) {
      // The claim expired (a stall) and may belong to a successor now: publish nothing more.
      this.markBroken('This instance lost its claim on the shared call');
      this.setListeners(0);
      return;
    }
    this.setListeners(n);
  }

  private setListeners(count: number): void {
    // Once the heartbeat stopped (finished, abandoned) nobody listens to this flight any more,
    // whatever a reply still in flight says.
    const n = this.heartbeat === undefined ? 0 : count;
    this.gauges.listeners.inc(n - this.listeners);
    this.listeners = n;
    const listening = n > 0;
    if (listening !== this.listening) {
      this.listening = listening;
      this.onListeners?.(listening);
    }
  }

  watchListeners(onChange: (listening: boolean) => void): void {
    this.onListeners = onChange;
    if (this.listening) onChange(true);
  }

  /**
   * Asked when this instance's last own client left. True while a remote follower listens (keep
   * the call running); false once the claim was released in the same atomic step, so that no
   * follower can join a call that is about to be aborted. Redis trouble answers false: a follower
   * that cannot be reached cannot be served either, and fails on its own deadline.
   */
  async stillListened(): Promise<boolean> {
    if (this.broken || this.finished) return false;
    try {
      const n = await this.redis.send<number>(this.keys.claim, evalArgs(RELEASE_UNLESS_LISTENED, [this.keys.claim, this.listenersKey], [this.flightId]));
      this.setListeners(n);
      return n > 0;
    } catch {
      return false;
    }
  }

  /**
   * Queues an entry. A few publishes are in flight at a time, each with its own deadline; chunks
   * that arrive meanwhile are merged into one entry (up to MAX_ENTRY_BYTES), so a burst from
   * upstream becomes a few large entries rather than a deep pipeline whose tail would miss its deadline.
   */
  private publish(type: string, data: Buffer | string): void {
    if (this.broken) return;
    const size = data.length;
    if (this.pendingBytes + size > this.options.maxPendingBytes) {
      this.markBroken('Redis could not keep up with the shared answer');
      return;
    }
    this.pendingBytes += size;
    const last = this.outbox[this.outbox.length - 1];
    if (type === ENTRY.chunk && last?.type === ENTRY.chunk && last.data.length + size <= MAX_ENTRY_BYTES) {
      last.data = Buffer.concat([last.data as Buffer, data as Buffer]);
    } else {
      this.outbox.push({ type, data });
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && !this.broken) {
      const entry = this.outbox.shift();
      if (entry === undefined) return;
      this.send(entry);
    }
  }

  private send(entry: { type: string; data: Buffer | string }): void {
    this.inFlight++;
    this.seq++;
    const data = typeof entry.data === 'string' ? entry.data : entry.data.toString('base64');
    const args = evalArgs(PUBLISH, [this.streamKey], [`0-${this.seq}`, entry.type, data, this.options.streamTtlMs]);
    // The deadline bounds a stall, not a transfer: it grows with the bytes queued before and in this entry.
    const deadline = this.redis.options.commandTimeoutMs * (1 + Math.floor((this.pendingBytes + data.length) / (256 * 1024)));
    this.redis.send(this.streamKey, args, deadline).then(
      () => {
        this.inFlight--;
        this.pendingBytes -= entry.data.length;
        // Replies come in order on one connection: every earlier entry is stored too.
        if (entry.type === ENTRY.end || entry.type === ENTRY.error) this.release();
        else this.pump();
      },
      () => {
        this.inFlight--;
        this.markBroken('A publish to Redis failed');
      },
    );
  }

  head(head: FlightHead): void {
    this.publish(ENTRY.head, JSON.stringify(wireHead(head)));
  }

  chunk(chunk: Buffer): void {
    if (this.finished || this.broken) return;
    this.bytes += chunk.length;
    if (this.bytes > this.options.maxStreamBytes) {
      this.markBroken('Shared answer too large to relay between instances');
      return;
    }
    if (!this.closedToJoiners && this.bytes > this.options.joinCapBytes) {
      // Followers already reading get every byte; new ones call upstream themselves.
      this.closedToJoiners = true;
      void this.redis.run(this.keys.claim, ['SET', this.keys.full(this.flightId), '1', 'PX', String(this.options.streamTtlMs)]);
    }
    this.publish(ENTRY.chunk, chunk);
  }

  end(whole: boolean): void {
    if (this.finished) return;
    // The heartbeat goes on until the end entry is stored (a backlog may take a moment).
    this.finished = true;
    this.publish(ENTRY.end, whole ? WHOLE_END : '');
  }

  fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const e = error instanceof GatewayError ? error : undefined;
    const entry: PublishedError =
      e !== undefined ? { code: e.code, status: e.status, message: e.message } : { code: REMOTE_FALLBACK_CODE, status: ERRORS[REMOTE_FALLBACK_CODE].status, message: 'Shared upstream call failed', aborted: isAbortError(error) };
    this.publish(ENTRY.error, JSON.stringify(entry));
  }

  abandon(): void {
    this.finished = true;
    this.stopHeartbeat();
    this.unpublish();
  }

  /**
   * After the terminal entry was stored: compare-and-delete the claim. The flight counts in
   * `remote_flight_publishers` until that delete settled: at 0, no instance can join it any more.
   */
  private release(): void {
    this.stopHeartbeat();
    void this.redis.run(this.keys.claim, evalArgs(RELEASE, [this.keys.claim], [this.flightId])).finally(() => this.unpublish());
  }

  private stopHeartbeat(): void {
    if (this.heartbeat === undefined) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.setListeners(0);
  }

  private unpublish(): void {
    if (this.unpublished) return;
    this.unpublished = true;
    this.gauges.publishers.dec();
  }

  /**
   * Stops publishing for good. Tries an error entry at the next sequence number and releases the
   * claim (both may fail too: then followers see the claim go or the sequence stop, and fail).
   */
  private markBroken(message: string): void {
    if (this.broken) return;
    this.broken = true;
    this.finished = true;
    this.stopHeartbeat();
    this.outbox.length = 0;
    this.pendingBytes = 0;
    this.seq++;
    const entry: PublishedError = { code: REMOTE_FALLBACK_CODE, status: ERRORS[REMOTE_FALLBACK_CODE].status, message };
    void this.redis.run(this.streamKey, evalArgs(PUBLISH, [this.streamKey], [`0-${this.seq}`, ENTRY.error, JSON.stringify(entry), this.options.streamTtlMs])).then(() => this.release());
  }
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.message === 'aborted');
}
