import { isIP } from 'node:net';
import { createClient, createCluster, ErrorReply } from 'redis';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { asError } from '../core/errors.js';

/**
 * One Redis connection with its own small circuit breaker: a failure domain. The gateway opens one
 * per kind of Redis work (flight commands, the flights' multiplexed reader, rate limits, the shared
 * cache), so a slow large cache write can never flip flights to local mode, nor the reverse.
 *
 * Invariants:
 * - Every command has a deadline (`commandTimeoutMs`, or the caller's longer one for a blocking read).
 * - A failure marks this domain down for `retryMs`; meanwhile callers fail at once (`run` answers
 *   undefined) and fall back to local-only behaviour. A command that ran past its deadline also
 *   recycles the connection: replies queued behind a stalled socket (a partition, a SIGSTOPped
 *   server) must never be matched to later commands' callers, and the next use opens a fresh one.
 * - Commands fail fast while disconnected (no offline queue), so nothing waits on a dead socket.
 * - Works the same on a single server (`redis://`, `rediss://`, `user:password@`) and on a Cluster
 *   (`REDIS_CLUSTER_NODES`): every command names the key that routes it.
 */

export interface RedisEndpoint {
  /** redis:// or rediss:// URL (credentials and TLS included); used when `clusterNodes` is unset. */
  url: string;
  /** Cluster seed nodes as URLs; credentials and TLS of the first apply to every node. */
  clusterNodes: readonly string[] | undefined;
  /** PEM of the CA that signed the server certificate (rediss://), when not a public CA. */
  tlsCa: string | undefined;
}

export interface RedisDomainOptions extends RedisEndpoint {
  /** A name for logs (`flights`, `reader`, `rate-limit`, `cache`). */
  name: string;
  commandTimeoutMs: number;
  retryMs: number;
}

/** The two operations the gateway needs from either client kind. */
interface Connection {
  send<T>(key: string | undefined, args: string[]): Promise<T>;
  destroy(): void;
}

const CONNECT_TIMEOUT_MS = 2_000;

export class RedisDeadlineError extends Error {
  readonly code = 'REDIS_DEADLINE';
  constructor(ms: number) {
    super(`redis command exceeded ${ms} ms`);
  }
}

function socketOptions(endpoint: RedisEndpoint, url: URL): Record<string, unknown> {
  const socket: Record<string, unknown> = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    // The domain reconnects by replacing the connection; the client itself must not retry forever.
    reconnectStrategy: false,
  };
  if (url.protocol === 'rediss:') {
    socket.tls = true;
    // SNI takes host names only (RFC 6066); an IP address is checked against the certificate's SANs.
    if (isIP(url.hostname) === 0) socket.servername = url.hostname;
    if (endpoint.tlsCa !== undefined) socket.ca = endpoint.tlsCa;
  }
  return socket;
}

function connect(endpoint: RedisEndpoint, onError: (err: unknown) => void): { connection: Connection; ready: Promise<void> } {
  if (endpoint.clusterNodes === undefined) {
    const url = new URL(endpoint.url);
    const client = createClient({ url: endpoint.url, disableOfflineQueue: true, socket: socketOptions(endpoint, url) as never });
    client.on('error', onError);
    client.on('end', () => onError(new Error('redis connection closed')));
    return {
      connection: { send: <T>(_key: string | undefined, args: string[]) => client.sendCommand<T>(args), destroy: () => client.destroy() },
      ready: client.connect().then(() => undefined),
    };
  }
  const first = new URL(endpoint.clusterNodes[0] as string);
  const cluster = createCluster({
    rootNodes: endpoint.clusterNodes.map((url) => ({ url })),
    defaults: {
      username: first.username === '' ? undefined : decodeURIComponent(first.username),
      password: first.password === '' ? undefined : decodeURIComponent(first.password),
      disableOfflineQueue: true,
      socket: socketOptions(endpoint, first) as never,
    },
    // Few connections: one per master, opened as slots are used.
    minimizeConnections: true,
  });
  cluster.on('error', onError);
  return {
    connection: {
      send: <T>(key: string | undefined, args: string[]) => cluster.sendCommand<T>(key, false, args),
      destroy: () => destroyCluster(cluster),
    },
    ready: cluster.connect().then(() => undefined),
  };
}

/**
 * Closes every connection of a cluster client at once. Invariant: after this, no socket of this
 * cluster is open. `cluster.destroy()` alone does not keep it: it destroys the node clients one after
 * another and throws ClientClosedError at the first one that is already closed (a master that went
 * away: its client closed itself, as it has no reconnect strategy). That left the connections to the
 * masters after it open for the life of the process, one more set at every recycle.
 */
function destroyCluster(cluster: ReturnType<typeof createCluster>): void {
  // Taken first: a `destroy()` that completes empties these lists.
  const clients = [...cluster.masters, ...cluster.replicas].map((node) => node.client);
  try {
    cluster.destroy();
  } catch {
    // Stopped at a closed node client, after marking the cluster closed; the loop finishes its work.
  }
  for (const client of clients) if (client?.isOpen === true) client.destroy();
}

export class RedisDomain {
  private connection: Connection | undefined;
  private ready: Promise<void> | undefined;
  private downUntil = 0;
  private connected = false;
  /** Whether a first attempt has ended either way (the start-up outcome has been reported). */
  private settled = false;
  private closed = false;
  private readonly listeners = new Set<(available: boolean) => void>();

  constructor(
    readonly options: RedisDomainOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** Connects in the background; the gateway serves locally until Redis is ready. */
  start(): void {
    this.open();
  }

  /**
   * Called with the new state whenever availability changes (metrics, reader wake-ups), and once
   * with `false` when the very first attempt fails (Redis unreachable at start-up).
   */
  onAvailability(listener: (available: boolean) => void): void {
    this.listeners.add(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener(this.available);
  }

  private open(): void {
    if (this.closed || this.connection !== undefined) return;
    const { connection, ready } = connect(this.options, (err) => {
      if (this.connection === connection) this.fail(err, true);
    });
    this.connection = connection;
    this.ready = ready.then(
      () => {
        if (this.connection !== connection) return;
        if (!this.connected) this.logger.info({ domain: this.options.name }, 'redis connected: shared coordination on');
        this.connected = true;
        this.settled = true;
        this.notify();
      },
      (err: unknown) => {
        if (this.connection === connection) this.fail(err, true);
      },
    );
    // A handshake that never completes (a partition that drops packets) is bounded too.
    const timer = setTimeout(() => {
      if (this.connection === connection && !this.connected) this.fail(new Error('redis connection not ready in time'), true);
    }, CONNECT_TIMEOUT_MS + this.options.commandTimeoutMs);
    timer.unref();
  }

  get available(): boolean {
    return !this.closed && this.connected && Date.now() >= this.downUntil;
  }

  /** Sends one command within `deadlineMs` (the command timeout by default); throws on any trouble. */
  async send<T>(key: string | undefined, args: string[], deadlineMs = this.options.commandTimeoutMs): Promise<T> {
    if (!this.available) {
      // Reopen a recycled connection once its retry period is over.
      if (!this.closed && this.connection === undefined && Date.now() >= this.downUntil) this.open();
      throw new Error(`redis (${this.options.name}) unavailable`);
    }
    const connection = this.connection as Connection;
    try {
      return await withDeadline(connection.send<T>(key, args), deadlineMs);
    } catch (err) {
      // A reply error (WRONGTYPE, NOSCRIPT...) is about the command, not the connection.
      if (isReplyError(err)) throw err;
      if (this.connection === connection) this.fail(err, true);
      throw err;
    }
  }

  /** Like `send`, but answers undefined on any trouble (callers fall back to local behaviour). */
  async run<T>(key: string | undefined, args: string[]): Promise<T | undefined> {
    try {
      return await this.send<T>(key, args);
    } catch {
      return undefined;
    }
  }

  /** Marks the domain down for `retryMs`; `recycle` drops the connection so the next use opens a new one. */
  private fail(err: unknown, recycle: boolean): void {
    if (this.closed) return;
    const wasUp = this.available;
    const firstAttempt = !this.settled;
    this.settled = true;
    this.downUntil = Date.now() + this.options.retryMs;
    this.metrics.redisErrors.inc({});
    if (recycle) {
      const old = this.connection;
      this.connection = undefined;
      this.connected = false;
      try {
        old?.destroy();
      } catch {
        // already closed
      }
      // Come back by itself after the retry period, even if nobody sends a command meanwhile.
      const timer = setTimeout(() => this.open(), this.options.retryMs);
      timer.unref();
    }
    if (wasUp) {
      this.logger.warn({ domain: this.options.name, err: err instanceof Error ? err.message : String(err), retryMs: this.options.retryMs }, 'redis unavailable: falling back to local-only coordination');
      this.notify();
    } else if (firstAttempt) {
      this.logger.info({ domain: this.options.name, err: err instanceof Error ? err.message : String(err), retryMs: this.options.retryMs }, 'redis not reached: local-only coordination until it answers');
      this.notify();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const old = this.connection;
    this.connection = undefined;
    try {
      old?.destroy();
    } catch {
      // already closed
    }
    await this.ready?.catch(() => undefined);
  }
}

/**
 * A reply error (NOSCRIPT, WRONGTYPE, MOVED...) is about one command, not the connection. The client
 * throws subclasses of ErrorReply (SimpleError, BlobError): matching the class name `ErrorReply`
 * missed every one of them, so a NOSCRIPT (rate-limit-redis's normal first call on a cluster master
 * without its script) recycled the whole connection and dropped to local counting.
 */
function isReplyError(err: unknown): boolean {
  return err instanceof ErrorReply;
}

export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RedisDeadlineError(ms)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(asError(e));
      },
    );
  });
}
