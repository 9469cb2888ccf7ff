import type { CallCost } from './cost-estimate.js';

/**
 * Where budget counters live: in process (one instance) or in Redis (every instance; see
 * redis-budget-counters.ts). Both keep the same invariants:
 * - A counter (one budget of one key or team, one period) holds spend already recorded in the
 *   ledger when it was created (its base), plus every settled call since, plus every open
 *   reservation. It expires after its period ends (plus a grace for late settles).
 * - `reserve` is atomic: it checks every line of the call and adds the amount to all of them, or to
 *   none. A line without a counter yet is never guessed at 0: the caller is told to load its base.
 * - A reservation ends exactly once: `settle` replaces its amount with the actual cost (the amount
 *   is removed only if the reservation is still open). One never settled expires at `expiresAt`
 *   (its amount released by the next `reserve` of the group), so nothing leaks forever; a settle
 *   arriving after that adds the actual cost alone.
 */

/** One budget of the call, identified by its counter. */
export interface BudgetLine {
  /** Counter name: `<scope>:<id>:<period>:<period start ms>` (ids made safe: see safeId). */
  readonly counter: string;
  /** Limits; undefined: not limited in this unit. */
  readonly limitMicroUsd: number | undefined;
  readonly limitTokens: number | undefined;
  /** When the counter may go: its period's end plus a grace. */
  readonly expireAt: number;
}

export interface Used {
  readonly microUsd: number;
  readonly tokens: number;
}

export interface ReserveRequest {
  /** Reservation id: unique per call. */
  readonly id: string;
  /** Every counter of one call shares the group (its team): one Redis Cluster slot. */
  readonly group: string;
  readonly lines: readonly BudgetLine[];
  readonly amount: CallCost;
  readonly now: number;
  /** When the reservation expires if never settled. */
  readonly expiresAt: number;
  /** Spend already recorded this period, by counter, for counters that have none yet. */
  readonly bases?: ReadonlyMap<string, Used> | undefined;
}

export type ReserveOutcome =
  /** `used`: per line, before this reservation. */
  | { readonly kind: 'reserved'; readonly used: readonly Used[] }
  /** `line`: index of the first line the amount does not fit. */
  | { readonly kind: 'refused'; readonly line: number; readonly used: readonly Used[] }
  /** Indexes of lines without a counter: load their bases and reserve again. */
  | { readonly kind: 'needs-base'; readonly lines: readonly number[] };

export interface SettleRequest {
  readonly id: string;
  readonly group: string;
  readonly lines: readonly BudgetLine[];
  readonly reserved: CallCost;
  readonly actual: CallCost;
}

export interface BudgetCounters {
  reserve(request: ReserveRequest): Promise<ReserveOutcome>;
  settle(request: SettleRequest): Promise<void>;
  /** The same as `reserve`, answered now: counters in process offer it (no promise on the request path). */
  readonly reserveNow?: ((request: ReserveRequest) => ReserveOutcome) | undefined;
  /** The same as `settle`, done now (counters in process). */
  readonly settleNow?: ((request: SettleRequest) => void) | undefined;
}

interface Counter {
  microUsd: number;
  tokens: number;
  expireAt: number;
}

/** An open reservation: the request that made it (held as is: no copy per call). */
type Pending = Pick<ReserveRequest, 'expiresAt' | 'lines' | 'amount'>;

/** How often (at most) expired counters and reservations are swept in process. */
const SWEEP_EVERY_MS = 1_000;

/** One instance's counters. Atomic because each operation runs in one synchronous turn of the event loop. */
export class LocalBudgetCounters implements BudgetCounters {
  private readonly counters = new Map<string, Counter>();
  private readonly pending = new Map<string, Pending>();
  private sweptAt = 0;
  /** The lines' counters during one reserveNow (synchronous, never re-entered): reused, not an array per call. */
  private readonly scratch: Counter[] = [];

  reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    return Promise.resolve(this.reserveNow(request));
  }

  readonly reserveNow = (request: ReserveRequest): ReserveOutcome => {
    this.sweep(request.now);
    const { lines, amount } = request;
    const n = lines.length;
    // The scratch array cut to the lines' length, filled by index; `used` is the call's own (it is returned).
    const counters = this.scratch;
    counters.length = n;
    let missing: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const line = lines[i] as BudgetLine;
      let c = this.counters.get(line.counter);
      if (c === undefined) {
        const base = request.bases?.get(line.counter);
        if (base === undefined) {
          (missing ??= []).push(i);
          continue;
        }
        c = { microUsd: base.microUsd, tokens: base.tokens, expireAt: line.expireAt };
        this.counters.set(line.counter, c);
      }
      counters[i] = c;
    }
    if (missing !== undefined) return { kind: 'needs-base', lines: missing };
    const used = new Array<Used>(n);
    let refused = -1;
    for (let i = 0; i < n; i++) {
      const c = counters[i] as Counter;
      used[i] = { microUsd: c.microUsd, tokens: c.tokens };
      if (refused === -1 && !fits(lines[i] as BudgetLine, c, amount)) refused = i;
    }
    if (refused !== -1) return { kind: 'refused', line: refused, used };
    for (const c of counters) {
      c.microUsd += amount.microUsd;
      c.tokens += amount.tokens;
    }
    this.pending.set(request.id, request);
    return { kind: 'reserved', used };
  };

  settle(request: SettleRequest): Promise<void> {
    this.settleNow(request);
    return Promise.resolve();
  }

  readonly settleNow = (request: SettleRequest): void => {
    const open = this.pending.get(request.id);
    this.pending.delete(request.id);
    const deltaUsd = request.actual.microUsd - (open === undefined ? 0 : open.amount.microUsd);
    const deltaTokens = request.actual.tokens - (open === undefined ? 0 : open.amount.tokens);
    for (const line of request.lines) {
      const c = this.counters.get(line.counter);
      if (c === undefined) continue;
      c.microUsd += deltaUsd;
      c.tokens += deltaTokens;
    }
  };

  /** Reservations not yet settled nor expired (tests). */
  get open(): number {
    return this.pending.size;
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    for (const [id, p] of this.pending) {
      if (p.expiresAt > now) continue;
      this.pending.delete(id);
      for (const line of p.lines) {
        const c = this.counters.get(line.counter);
        if (c === undefined) continue;
        c.microUsd -= p.amount.microUsd;
        c.tokens -= p.amount.tokens;
      }
    }
    for (const [name, c] of this.counters) if (c.expireAt <= now) this.counters.delete(name);
  }
}

/** Whether `amount` fits what remains of the line's limits. */
export function fits(line: BudgetLine, used: Used, amount: CallCost): boolean {
  if (line.limitMicroUsd !== undefined && used.microUsd + amount.microUsd > line.limitMicroUsd) return false;
  if (line.limitTokens !== undefined && used.tokens + amount.tokens > line.limitTokens) return false;
  return true;
}
