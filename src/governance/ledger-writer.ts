import type { Logger } from '../observability/logger.js';
import type { BudgetMetrics } from './budget-metrics.js';
import type { LedgerRow } from './model.js';

/** The store's port (part A implements it): writes rows durably, all or none. */
export interface LedgerSink {
  insertLedger(rows: readonly LedgerRow[]): Promise<void>;
}

export interface LedgerWriterOptions {
  /** Rows held at most (queued and in the batch being written); past it the oldest are dropped. */
  maxRows?: number;
  /** Bytes held at most (estimated per row); past it the oldest are dropped. */
  maxBytes?: number;
  /** Rows per insert. */
  batchRows?: number;
  /** A partial batch is written after this long. */
  flushIntervalMs?: number;
  /** Back-off after a failed write: doubles from `retryBaseMs` up to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export const LEDGER_DEFAULTS: Readonly<Required<LedgerWriterOptions>> = Object.freeze({
  maxRows: 100_000,
  maxBytes: 64 * 1024 * 1024,
  batchRows: 500,
  flushIntervalMs: 1_000,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
});

/** A row's memory, estimated: fixed fields plus its strings (UTF-16). */
function rowBytes(row: LedgerRow): number {
  return 256 + 2 * (row.requestId.length + row.mode.length + (row.keyId?.length ?? 0) + (row.teamId?.length ?? 0) + (row.userId?.length ?? 0) + (row.model?.length ?? 0) + (row.upstream?.length ?? 0) + (row.claudeCodeSession?.length ?? 0));
}

/**
 * Writes ledger rows off the request path (issue 26). `push` only queues: it never waits and never
 * throws. Rows are written in batches (`batchRows`, or whatever is queued after `flushIntervalMs`),
 * one batch at a time. Invariants:
 * - Bounded: at most `maxRows` rows and `maxBytes` bytes are held (the batch in flight included).
 *   Past either bound the OLDEST queued rows are dropped and counted (claude_gateway_ledger_dropped_total).
 * - A failed write keeps its rows at the head of the queue and retries with back-off (doubling to
 *   `retryMaxMs`): nothing is lost while the sink is down, up to the bound. One log line per outage
 *   (when writes start failing, and when they work again).
 * - `close` writes what is queued until its deadline; rows left then are counted as dropped.
 */
export class LedgerWriter {
  private readonly opts: Required<LedgerWriterOptions>;
  /** Rows waiting, oldest first, from `head` (rows before it left: a cheap shift). */
  private queue: LedgerRow[] = [];
  private head = 0;
  /** The batch being written (older than every queued row); put back at the head if the write fails. */
  private batch: LedgerRow[] | undefined;
  /** Estimated bytes of every row held (queued and in flight). */
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private droppedCount = 0;
  private writtenCount = 0;

  constructor(
    private readonly sink: LedgerSink,
    private readonly metrics: BudgetMetrics | undefined,
    private readonly logger: Logger,
    options: LedgerWriterOptions = {},
  ) {
    this.opts = { ...LEDGER_DEFAULTS, ...options };
    // The queue gauge reads the depth when scraped.
    if (metrics !== undefined) metrics.ledgerDepth = () => this.depth;
  }

  /** Rows held now (queued, plus the batch being written). */
  get depth(): number {
    return this.queue.length - this.head + (this.batch?.length ?? 0);
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get written(): number {
    return this.writtenCount;
  }

  push(row: LedgerRow): void {
    if (this.closed) {
      this.drop(1);
      return;
    }
    this.queue.push(row);
    this.bytes += rowBytes(row);
    this.trim();
    if (this.batch !== undefined) return;
    if (this.failures > 0) this.writeSoon(this.backoff());
    else this.writeSoon(this.queued >= this.opts.batchRows ? 0 : this.opts.flushIntervalMs);
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  /** Drops the oldest queued rows while over a bound (the batch in flight stays: it is written or put back whole). */
  private trim(): void {
    while (this.queued > 0 && (this.depth > this.opts.maxRows || this.bytes > this.opts.maxBytes)) {
      const old = this.queue[this.head] as LedgerRow;
      this.head++;
      this.bytes -= rowBytes(old);
      this.drop(1);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private drop(n: number): void {
    if (n <= 0) return;
    this.droppedCount += n;
    this.metrics?.ledgerDropped.inc(n);
  }

  private backoff(): number {
    return Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(20, Math.max(0, this.failures - 1)));
  }

  private writeSoon(ms: number): void {
    if (this.timer !== undefined) {
      if (ms > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeBatch();
    }, ms);
    this.timer.unref();
  }

  /** Writes one batch and schedules the next. Resolves whether it wrote. */
  private async writeBatch(): Promise<boolean> {
    if (this.batch !== undefined || this.queued === 0) return false;
    const batch = this.queue.slice(this.head, this.head + this.opts.batchRows);
    this.head += batch.length;
    this.batch = batch;
    let ok = false;
    try {
      await this.sink.insertLedger(batch);
      ok = true;
    } catch (err) {
      this.failures++;
      this.metrics?.ledgerFailures.inc();
      if (this.failures === 1) this.logger.error({ err: err instanceof Error ? err.message : String(err), held: this.depth, maxRows: this.opts.maxRows }, 'ledger writes failing: rows are kept and retried (the oldest dropped past the bound)');
    }
    this.batch = undefined;
    if (ok) {
      for (const row of batch) this.bytes -= rowBytes(row);
      this.writtenCount += batch.length;
      this.metrics?.ledgerWritten.inc(batch.length);
      if (this.failures > 0) this.logger.info({ failures: this.failures }, 'ledger writes work again');
      this.failures = 0;
    } else {
      // Put back, oldest first, then keep the bounds (rows pushed meanwhile may have filled them).
      this.queue = batch.concat(this.queue.slice(this.head));
      this.head = 0;
    }
    this.trim();
    if (this.queued > 0 && !this.closed) this.writeSoon(!ok ? this.backoff() : this.queued >= this.opts.batchRows ? 0 : this.opts.flushIntervalMs);
    return ok;
  }

  /** Writes what is held until `deadlineMs` has passed; whatever is left then is dropped (counted). */
  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const end = Date.now() + deadlineMs;
    const wait = (ms: number): Promise<false> => new Promise((r) => setTimeout(() => r(false), Math.max(0, Math.min(ms, end - Date.now()))));
    while (this.depth > 0 && Date.now() < end) {
      if (this.batch !== undefined) {
        await wait(10);
        continue;
      }
      const wrote = await Promise.race([this.writeBatch(), wait(end - Date.now())]);
      if (!wrote && this.failures > 0) await wait(this.backoff());
    }
    const left = this.depth;
    if (left > 0) {
      this.logger.warn({ rows: left }, 'ledger rows not written before the shutdown deadline: dropped');
      this.drop(left);
    }
  }
}
