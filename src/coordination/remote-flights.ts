import { randomUUID } from 'node:crypto';
import type { FlightHead, FlightSource } from '../pipeline/coalesce/flight.js';
import type { SharedFlights, SharedJoin } from '../pipeline/coalesce/shared-flights.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { evalArgs, FlightKeys, JOIN } from './flight-keys.js';
import { RedisFlightPublisher } from './flight-publisher.js';
import { Follow, FlightReader, FollowFailure, toGatewayError } from './flight-reader.js';
import type { RemoteFlightGauges, RemoteFlightOptions } from './remote-flight-options.js';
import type { RedisDomain } from './redis.js';
import { headFromWire, type WireHead } from './wire-head.js';

/**
 * Coalescing across instances through Redis: the `SharedFlights` port of `pipeline/`.
 *
 * Local flights coalesce first, so each instance brings at most one request per fingerprint here.
 * `join` runs one script that either claims the flight (`SET NX PX`: this instance leads and
 * publishes) or registers this instance as a listener of the holder's flight and follows it
 * through the multiplexed reader. A follower's answer is the leader's head and bytes, in order, or
 * an error: see FlightReader for continuity and deadlines, RedisFlightPublisher for publishing.
 *
 * Before the head, nothing is lost by trying again: a leader that vanished (claim gone), aborted
 * (no listener anywhere) or failed before its head makes the follower join again, and it usually
 * leads in its place (`takeover`). Any Redis trouble answers `local`: the instance calls upstream
 * on its own. Joining never throws and never waits longer than the reader's deadlines.
 */

/** Tries of the join script per request (a leader that vanishes between tries makes one more). */
const MAX_JOIN_ATTEMPTS = 3;

export class RedisSharedFlights implements SharedFlights {
  private readonly instance = randomUUID();
  private counter = 0;
  private readonly reader: FlightReader;

  constructor(
    private readonly commands: RedisDomain,
    readerConnection: RedisDomain,
    private readonly options: RemoteFlightOptions,
    private readonly metrics: GatewayMetrics,
    private readonly gauges: RemoteFlightGauges,
  ) {
    const heartbeatMs = Math.max(20, Math.floor(options.claimTtlMs / 3));
    this.reader = new FlightReader(
      readerConnection,
      commands,
      {
        blockMs: heartbeatMs,
        pollMs: 20,
        heartbeatMs,
        listenerTtlMs: options.claimTtlMs,
        maxQueuedBytes: options.maxQueuedBytes,
        cluster: options.cluster,
        wakeKey: `${options.keyPrefix}{wake:${this.instance}}`,
      },
      (delta) => gauges.followers.inc(delta),
    );
  }

  async join(key: string, signal: AbortSignal): Promise<SharedJoin> {
    const keys = new FlightKeys(this.options.keyPrefix, key);
    let takeover = false;
    for (let attempt = 0; attempt < MAX_JOIN_ATTEMPTS && !signal.aborted; attempt++) {
      const flightId = `${this.instance}:${++this.counter}`;
      let reply: [string, string];
      try {
        reply = await this.commands.send<[string, string]>(
          keys.claim,
          evalArgs(JOIN, [keys.claim, `${keys.base}:full:`, `${keys.base}:l:`], [flightId, this.options.claimTtlMs, this.instance, this.options.claimTtlMs]),
        );
      } catch {
        return { role: 'local' };
      }
      const [role, holder] = reply;
      if (role === 'leader') {
        this.metrics.remoteCoalesced.inc({ role: takeover ? 'takeover' : 'leader' });
        return { role: 'leader', publisher: new RedisFlightPublisher(this.commands, keys, flightId, this.options, this.gauges, takeover) };
      }
      if (role === 'full') return { role: 'local' };
      if (role !== 'follower') continue; // the claim vanished between two steps of the script's caller: try again
      const follow = new Follow(keys, holder, this.instance, this.reader);
      this.reader.add(follow);
      const outcome = await this.awaitHead(follow, signal);
      if (outcome.kind === 'head') {
        this.metrics.remoteCoalesced.inc({ role: 'follower' });
        const end = { whole: false };
        return { role: 'follower', answer: { head: outcome.head, body: relay(follow, signal, end) }, whole: () => end.whole };
      }
      follow.close();
      if (outcome.kind === 'local') return { role: 'local' };
      takeover = true;
    }
    return { role: 'local' };
  }

  /** Waits for the leader's head; `retry` when it went away before sending one. */
  private async awaitHead(follow: Follow, signal: AbortSignal): Promise<{ kind: 'head'; head: FlightHead } | { kind: 'retry' } | { kind: 'local' }> {
    try {
      const event = await follow.next(signal);
      if (event.kind === 'head') return { kind: 'head', head: headFromWire(JSON.parse(event.data) as WireHead) };
      // An error before any head: an aborted call or a transport failure on the leader's side.
      // Nothing was relayed yet, so this instance may try the call itself.
      return { kind: 'retry' };
    } catch (err) {
      return err instanceof FollowFailure && err.leaderGone ? { kind: 'retry' } : { kind: 'local' };
    }
  }

  async close(): Promise<void> {
    this.reader.close();
    return Promise.resolve();
  }
}

/** A follower's body: every byte the leader relayed, in order, then the end (`end.whole` set from it); or it throws. */
async function* relay(follow: Follow, signal: AbortSignal, end: { whole: boolean }): AsyncGenerator<Buffer> {
  try {
    for (;;) {
      const event = await follow.next(signal);
      if (event.kind === 'chunk') yield event.data;
      else if (event.kind === 'end') {
        end.whole = event.whole;
        return;
      }
      else if (event.kind === 'error') throw toGatewayError(event.error);
      // a second head cannot happen: sequence numbers would have failed the follow first
    }
  } finally {
    follow.close();
  }
}

export type { FlightSource };
