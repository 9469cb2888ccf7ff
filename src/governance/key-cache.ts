import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { CellCounter } from '../observability/metric-cells.js';
import type { Principal } from './model.js';
import { MAX_LIVE_KEYS, type GovernanceStore } from './store.js';

/** The longest poll interval allowed (GOVERNANCE_POLL_MS): the revocation bound below rests on it. */
export const MAX_POLL_MS = 5_000;

/**
 * Every live database key, in memory, by the SHA-256 of its secret: the request path looks a key
 * up here and never queries the database. A poll every `pollMs` reads the keys changed since the
 * last one (store.keysChangedSince: creations, rotations, revocations, limit/budget/expiry changes,
 * changes to their team), so a change made on any instance takes effect here within one poll
 * interval plus one poll's query time. With GOVERNANCE_POLL_MS at most 5 s and a poll answered in
 * well under a second, README states the bound as 5 s after the change is committed (for the default
 * 1 s: about 1 s). Expiry needs no poll: `lookup` compares expiresAt with the clock.
 *
 * Bounded: it holds unrevoked keys only, and the store refuses to create more than MAX_LIVE_KEYS
 * (100,000) of them; past that bound (a database edited by hand) further keys are not held and an
 * error is logged.
 *
 * A failed poll keeps the last known keys (a database outage does not lock every client out), logs
 * once per outage, counts `governance_key_poll_failures_total`, and retries at the next interval.
 */
export class KeyCache {
  private readonly byHash = new Map<string, Principal>();
  /** The hash each key id is held under (a rotation replaces it). */
  private readonly hashById = new Map<string, string>();
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failing = false;
  private overflowLogged = false;
  private readonly pollFailures: CellCounter;

  constructor(
    private readonly store: GovernanceStore,
    private readonly options: { pollMs: number; logger: Logger; registry: Registry; now?: () => number },
  ) {
    this.pollFailures = new CellCounter({ name: 'governance_key_poll_failures_total', help: 'Polls of the governance database for key changes that failed (the last known keys stay in force)', registers: [options.registry] });
    const size = (): number => this.byHash.size;
    new Gauge({
      name: 'governance_keys_cached',
      help: 'Unrevoked database keys held in memory',
      aggregator: 'sum',
      registers: [options.registry],
      collect() {
        this.set(size());
      },
    });
  }

  /** Loads every key (the first poll must succeed: the gateway does not start without its keys), then polls. */
  async start(): Promise<void> {
    await this.pollOnce();
    this.schedule();
  }

  /** The principal of a presented key's hash; undefined when unknown, revoked, rotated away or expired. */
  lookup(hash: string): Principal | undefined {
    const principal = this.byHash.get(hash);
    if (principal === undefined) return undefined;
    if (principal.expiresAt !== undefined && principal.expiresAt <= (this.options.now ?? Date.now)()) return undefined;
    return principal;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** One poll now (tests, and the timer); concurrent callers share the poll in progress. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling?.catch(() => undefined);
  }

  /**
   * One scheduled poll: a failure keeps the last known keys, counts, and logs once per outage (the
   * recovery once too). Never rejects.
   */
  async tick(): Promise<void> {
    try {
      await this.poll();
      if (this.failing) this.options.logger.info('governance database reachable again: key changes apply again');
      this.failing = false;
    } catch (err) {
      this.pollFailures.inc({});
      if (!this.failing) this.options.logger.error({ err }, 'governance database poll failed: the last known keys stay in force until it answers');
      this.failing = true;
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.tick().finally(() => {
        if (this.timer !== undefined) this.schedule();
      });
    }, this.options.pollMs);
    this.timer.unref();
  }

  private async pollOnce(): Promise<void> {
    for (;;) {
      const page = await this.store.keysChangedSince(this.cursor);
      for (const change of page.changes) this.apply(change.hash, change.revoked, change.principal);
      this.cursor = page.cursor;
      if (!page.more) return;
    }
  }

  private apply(hash: string, revoked: boolean, principal: Principal): void {
    const held = this.hashById.get(principal.keyId);
    if (held !== undefined) {
      this.byHash.delete(held);
      this.hashById.delete(principal.keyId);
    }
    if (revoked) return;
    if (this.byHash.size >= MAX_LIVE_KEYS) {
      if (!this.overflowLogged) this.options.logger.error({ max: MAX_LIVE_KEYS }, 'more unrevoked database keys than the gateway holds: the newest are refused');
      this.overflowLogged = true;
      return;
    }
    this.byHash.set(hash, Object.freeze(principal));
    this.hashById.set(principal.keyId, hash);
  }
}
