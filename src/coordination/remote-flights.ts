import { randomUUID } from 'node:crypto';
import { GatewayError, type GatewayErrorCode } from '../errors.js';
import type { FlightHead, FlightSource } from '../pipeline/coalesce/flight.js';
import type { RedisClient, SharedRedis } from './redis.js';

/**
 * Coalescing across instances. Local flights coalesce first, so each instance brings at most one
 * request per fingerprint here. One instance leads: an atomic claim (`SET NX PX`) kept alive by a
 * heartbeat. The leader publishes the upstream answer (head, body chunks, end or error) to a Redis
 * Stream named after its claim; followers read it from the start (replay) and then block for live
 * entries. A follower that finds the claim gone before any head arrived takes over and calls
 * upstream itself; one that had already received bytes fails cleanly (its clients get an SSE
 * error event or a cut body): nobody waits forever. Any Redis trouble returns `local`: the instance
 * then calls upstream on its own.
 */

export interface RemoteFlightOptions {
  claimTtlMs: number;
  streamTtlMs: number;
  /** Published body bytes at most; past it followers are failed rather than Redis filled. */
  maxStreamBytes: number;
  keyPrefix: string;
}

type Entry = Record<string, string>;

export type RemoteDecision = { role: 'local' } | { role: 'leader'; publisher: Publisher } | { role: 'follower'; streamKey: string; claimKey: string };

export class RemoteFlights {
  private readonly instance = randomUUID();
  private counter = 0;

  constructor(
    private readonly redis: SharedRedis,
    private readonly options: RemoteFlightOptions,
  ) {}

  private claimKey(key: string): string {
    return `${this.options.keyPrefix}claim:${key}`;
  }

  /** Claims the flight for this instance, or finds who has it. */
  async decide(key: string): Promise<RemoteDecision> {
    const claimKey = this.claimKey(key);
    for (let attempt = 0; attempt < 3; attempt++) {
      const flightId = `${this.instance}:${++this.counter}`;
      const claimed = await this.redis.run((c) => c.set(claimKey, flightId, { condition: 'NX', expiration: { type: 'PX', value: this.options.claimTtlMs } }));
      if (claimed === undefined) return { role: 'local' };
      if (claimed === 'OK') return { role: 'leader', publisher: new Publisher(this.redis, claimKey, this.streamKey(key, flightId), this.options) };
      const holder = await this.redis.run((c) => c.get(claimKey));
      if (holder === undefined) return { role: 'local' };
      if (holder !== null) return { role: 'follower', streamKey: this.streamKey(key, holder), claimKey };
      // The leader finished between our two commands: try to lead again.
    }
    return { role: 'local' };
  }

  private streamKey(key: string, flightId: string): string {
    return `${this.options.keyPrefix}stream:${key}:${flightId}`;
  }

  /**
   * Follows a remote leader. Resolves with the shared answer once its head arrived, with
   * `takeover` (a publisher: this instance now leads) when the leader vanished before any head, or
   * with `local` when Redis cannot be used.
   */
  async follow(key: string, decision: { streamKey: string; claimKey: string }, signal: AbortSignal): Promise<FlightSource | { role: 'takeover'; publisher: Publisher } | { role: 'local' }> {
    const conn = await this.redis.duplicate();
    if (conn === undefined) return { role: 'local' };
    const reader = new StreamReader(conn, decision.streamKey);
    try {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        const entries = await reader.next(1_000);
        if (entries === undefined) {
          reader.close();
          return { role: 'local' };
        }
        for (const entry of entries) {
          if (entry.h !== undefined) {
            const head = JSON.parse(entry.h) as FlightHead;
            return { head, body: reader.body(entries.slice(entries.indexOf(entry) + 1), decision.claimKey, this.redis, signal) };
          }
          if (entry.x !== undefined) {
            reader.close();
            throw remoteError(entry.x);
          }
        }
        if (entries.length === 0 && (await this.redis.run((c) => c.exists(decision.claimKey))) === 0) {
          // The leader is gone and nothing was sent: lead in its place.
          const next = await this.decide(key);
          if (next.role === 'leader') {
            reader.close();
            return { role: 'takeover', publisher: next.publisher };
          }
          if (next.role === 'local') {
            reader.close();
            return next;
          }
          reader.retarget(next.streamKey);
          decision = next;
        }
      }
    } catch (err) {
      reader.close();
      throw err;
    }
  }
}

function remoteError(raw: string): GatewayError {
  try {
    const e = JSON.parse(raw) as { code: GatewayErrorCode; status: number; message: string };
    return new GatewayError(e.code, e.status, e.message);
  } catch {
    return new GatewayError('UPSTREAM_UNREACHABLE', 502, 'Shared upstream call failed');
  }
}

class StreamReader {
  private lastId = '0-0';
  private closed = false;

  constructor(
    private readonly conn: RedisClient,
    private streamKey: string,
  ) {}

  retarget(streamKey: string): void {
    this.streamKey = streamKey;
    this.lastId = '0-0';
  }

  /** Entries after the last read, waiting up to `blockMs`; [] on timeout, undefined on Redis trouble. */
  async next(blockMs: number): Promise<Entry[] | undefined> {
    try {
      type XReadReply = [string, [string, string[]][]][] | null;
      const reply = await this.conn.sendCommand<XReadReply>(['XREAD', 'COUNT', '256', 'BLOCK', String(blockMs), 'STREAMS', this.streamKey, this.lastId]);
      if (reply === null) return [];
      const out: Entry[] = [];
      for (const [, messages] of reply) {
        for (const [id, fields] of messages) {
          this.lastId = id;
          const entry: Entry = {};
          for (let i = 0; i < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
          out.push(entry);
        }
      }
      return out;
    } catch {
      return undefined;
    }
  }

  async *body(pending: Entry[], claimKey: string, redis: SharedRedis, signal: AbortSignal): AsyncGenerator<Buffer> {
    try {
      let entries: Entry[] | undefined = pending;
      for (;;) {
        for (const entry of entries) {
          if (entry.c !== undefined) yield Buffer.from(entry.c, 'base64');
          else if (entry.e !== undefined) return;
          else if (entry.x !== undefined) throw remoteError(entry.x);
        }
        if (signal.aborted) throw signal.reason;
        entries = await this.next(1_000);
        if (entries === undefined) throw new GatewayError('UPSTREAM_UNREACHABLE', 502, 'Lost Redis while following a shared upstream call');
        if (entries.length === 0 && (await redis.run((c) => c.exists(claimKey))) !== 1) {
          // Either the leader finished (its end entry is already in the stream: read once more) or it died.
          entries = await this.next(1);
          if (entries === undefined || entries.length === 0) throw new GatewayError('UPSTREAM_UNREACHABLE', 502, 'The instance leading this shared call stopped mid-answer');
        }
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.destroy();
    } catch {
      // already closed
    }
  }
}

/** The leader's side: head, chunks, end or error, in order, on the shared connection. */
export class Publisher {
  private heartbeat: NodeJS.Timeout | undefined;
  private bytes = 0;
  private done = false;

  constructor(
    private readonly redis: SharedRedis,
    private readonly claimKey: string,
    private readonly streamKey: string,
    private readonly options: RemoteFlightOptions,
  ) {
    this.heartbeat = setInterval(() => {
      void this.redis.run((c) => c.pExpire(this.claimKey, this.options.claimTtlMs));
    }, Math.max(50, Math.floor(options.claimTtlMs / 3)));
    this.heartbeat.unref();
  }

  private add(fields: string[]): void {
    // Not awaited: commands on one connection keep their order, and the client is never slowed by Redis.
    void this.redis.run((c) => c.sendCommand(['XADD', this.streamKey, '*', ...fields]));
  }

  head(head: FlightHead): void {
    this.add(['h', JSON.stringify(head)]);
    void this.redis.run((c) => c.pExpire(this.streamKey, this.options.streamTtlMs));
  }

  chunk(chunk: Buffer): void {
    if (this.done) return;
    this.bytes += chunk.length;
    if (this.bytes > this.options.maxStreamBytes) {
      this.fail(new GatewayError('UPSTREAM_RESPONSE_INVALID', 502, 'Shared answer too large to relay between instances'));
      return;
    }
    this.add(['c', chunk.toString('base64')]);
  }

  end(): void {
    this.finish(['e', '1']);
  }

  fail(err: unknown): void {
    const e = err instanceof GatewayError ? err : new GatewayError('UPSTREAM_UNREACHABLE', 502, 'Shared upstream call failed');
    this.finish(['x', JSON.stringify({ code: e.code, status: e.status, message: e.message })]);
  }

  private finish(fields: string[]): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.add(fields);
    void this.redis.run((c) => c.pExpire(this.streamKey, this.options.streamTtlMs));
    void this.redis.run((c) => c.del(this.claimKey));
  }

  /** Stops the heartbeat without publishing (this process is going away). */
  abandon(): void {
    clearInterval(this.heartbeat);
    this.done = true;
  }
}
