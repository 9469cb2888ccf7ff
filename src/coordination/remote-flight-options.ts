import { Gauge } from 'prom-client';
import type { GatewayMetrics } from '../observability/metrics.js';

/** Settings and gauges of coalescing across instances, shared by its sides (remote-flights.ts, flight-publisher.ts). */

export interface RemoteFlightOptions {
  keyPrefix: string;
  claimTtlMs: number;
  streamTtlMs: number;
  /** Body bytes past which a flight takes no new remote joiners (those reading keep reading). */
  joinCapBytes: number;
  /** Body bytes past which the leader stops publishing and its followers fail (Redis memory bound). */
  maxStreamBytes: number;
  /** Bytes sent to Redis and not yet acknowledged, past which publishing is declared broken. */
  maxPendingBytes: number;
  /** Bytes read for one follower and not yet relayed, past which its stream is not read until it drains. */
  maxQueuedBytes: number;
  cluster: boolean;
}

export interface RemoteFlightGauges {
  /** Flights this instance leads and publishes right now. */
  publishers: Gauge;
  /** Remote followers the flights this instance leads last counted. */
  listeners: Gauge;
  /** Remote flights this instance follows right now. */
  followers: Gauge;
}

export function remoteFlightGauges(metrics: GatewayMetrics): RemoteFlightGauges {
  const registers = [metrics.registry];
  // Loaded with the rest of coordination/ (only when Redis is configured). Each worker leads and
  // follows its own flights: across workers they sum.
  return {
    publishers: new Gauge({ name: 'remote_flight_publishers', help: 'Flights this instance leads and publishes to other instances right now', aggregator: 'sum', registers }),
    listeners: new Gauge({ name: 'remote_flight_listeners', help: 'Followers on other instances that flights led here last counted', aggregator: 'sum', registers }),
    followers: new Gauge({ name: 'remote_flight_followers', help: 'Flights led by another instance that this instance follows right now', aggregator: 'sum', registers }),
  };
}
