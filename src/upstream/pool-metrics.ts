import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PoolObserver, PoolSnapshot } from './client.js';

/** Seconds a request waited for an upstream connection; the deadline (UPSTREAM_POOL_WAIT_MS) ends the wait. */
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The upstream pool, made visible: gauges are read from the pool at scrape time (nothing on the hot
 * path); the wait histogram and timeout counter are fed only by requests that found no free connection.
 */
export class UpstreamPoolMetrics implements PoolObserver {
  private readonly waitSeconds: Histogram;
  private readonly timeouts: Counter;
  private source: (() => PoolSnapshot) | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const read = (pick: (s: PoolSnapshot) => number) =>
      function (this: Gauge): void {
        // `this` is the gauge prom-client collects; the snapshot is taken per scrape.
        this.set(pick(snapshotOf()));
      };
    const snapshotOf = (): PoolSnapshot => this.source?.() ?? { capacity: 0, active: 0, queued: 0, connections: 0 };
    // Each worker has its own pool: across workers these sum (capacity too: the gateway's capacity).
    new Gauge({ name: 'upstream_pool_queued_requests', help: 'Requests waiting for a free upstream connection (HTTP/2: stream)', aggregator: 'sum', registers, collect: read((s) => s.queued) });
    new Gauge({ name: 'upstream_pool_active_requests', help: 'Upstream calls holding a connection (HTTP/2: stream)', aggregator: 'sum', registers, collect: read((s) => s.active) });
    new Gauge({ name: 'upstream_pool_capacity', help: 'Upstream calls that can be in progress at once (UPSTREAM_CONNECTIONS, x UPSTREAM_HTTP2_MAX_STREAMS with HTTP/2)', aggregator: 'sum', registers, collect: read((s) => s.capacity) });
    new Gauge({ name: 'upstream_pool_connections', help: 'Open upstream connections', aggregator: 'sum', registers, collect: read((s) => s.connections) });
    this.waitSeconds = new Histogram({ name: 'upstream_pool_wait_seconds', help: 'Time requests that found every upstream connection busy waited for one', buckets: WAIT_BUCKETS, registers });
    this.timeouts = new Counter({ name: 'upstream_pool_wait_timeouts_total', help: 'Requests answered 529 because no upstream connection became free within UPSTREAM_POOL_WAIT_MS', registers });
  }

  /** The pool whose occupancy the gauges report. */
  watch(source: () => PoolSnapshot): void {
    this.source = source;
  }

  waited(seconds: number): void {
    this.waitSeconds.observe(seconds);
  }

  timedOut(): void {
    this.timeouts.inc();
  }
}
