import { randomBytes } from 'node:crypto';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { BudgetCounters, BudgetLine, ReserveOutcome, ReserveRequest, Used } from './budget-counters.js';
import type { BudgetMetrics } from './budget-metrics.js';
import { ZERO_COST, type CallCost } from './cost-estimate.js';
import type { Budget, BudgetPeriod, Principal } from './model.js';
import { periodAdjective, periodWindow } from './periods.js';
import { safeId } from './redis-budget-counters.js';

/**
 * Admission against budgets (issue 26): a governed call reserves its worst-case cost on every
 * budget of its key and of its key's team, for every period, atomically (budget-counters.ts), or is
 * refused; the end of the call settles the reservation to the billed usage. Whatever overlaps, the
 * spend admitted never exceeds a budget by more than the estimate's error: worst cases are held
 * until the bill replaces them.
 */

/** The store's port (part A implements it over the ledger): spend recorded since `sinceMs`. */
export interface SpendSource {
  spendSince(scope: 'key' | 'team', id: string, sinceMs: number): Promise<{ microUsd: number; tokens: number }>;
}

export type BudgetFailMode = 'closed' | 'open';

export interface BudgetOptions {
  counters: BudgetCounters;
  spend: SpendSource;
  /** BUDGET_FAIL_MODE: what admission does while counters or spend cannot be read. */
  failMode: BudgetFailMode;
  metrics: BudgetMetrics | undefined;
  logger: Logger;
  /** A reservation never settled is released after this (default 1 hour: longer than any call). */
  reservationTtlMs?: number;
  now?: () => number;
}

/** The tightest budget's remaining amounts at admission (before this call's own cost), for the answer's headers. */
export interface Remaining {
  /** Least remaining among budgets in USD (micro-dollars); undefined when none is in USD. */
  readonly microUsd: number | undefined;
  /** Least remaining among budgets in tokens; undefined when none is in tokens. */
  readonly tokens: number | undefined;
  /** When the tightest budget (least remaining share) resets. */
  readonly resetAt: number;
}

/** One budget of a call, with what names it in a refusal. */
interface NamedLine extends BudgetLine {
  readonly scope: 'key' | 'team';
  readonly name: string;
  readonly teamName: string;
  readonly period: BudgetPeriod;
  /** The period's start: spend since then is the counter's base. */
  readonly start: number;
  readonly resetAt: number;
}

/** A principal's budget lines now, and the group their counters share (its team). */
interface PrincipalLines {
  readonly lines: NamedLine[];
  readonly group: string;
  /** When the earliest period ends (the lines are made again then). */
  readonly until: number;
}

/** A counter outlives its period by this much, so that settles of calls admitted just before the end still land. */
const COUNTER_GRACE_MS = 3_600_000;
const DEFAULT_RESERVATION_TTL_MS = 3_600_000;
/** Last remaining amounts per key, for answers that reserve nothing (reused); bounded. */
const MAX_REMEMBERED = 10_000;

/** A call's hold on its budgets. `end` settles it to the actual cost, exactly once; later calls do nothing. */
export interface Reservation {
  readonly remaining: Remaining | undefined;
  end(actual: CallCost): void;
}

const NOTHING_HELD: Reservation = Object.freeze({ remaining: undefined, end: () => undefined });

/**
 * Reservation ids: unique per call across instances (they name members of a shared Redis set): a
 * random prefix per process, then a counter (a UUID per call showed in the per-request cost).
 */
const ID_PREFIX = randomBytes(9).toString('base64url');
let idCount = 0;
const reservationId = (): string => ID_PREFIX + (++idCount).toString(36);

/** An open reservation (a class: no closures per call). */
class Held implements Reservation {
  private done = false;
  constructor(
    private readonly budgets: Budgets,
    private readonly request: ReserveRequest,
    readonly remaining: Remaining,
  ) {}

  end(actual: CallCost): void {
    if (this.done) return;
    this.done = true;
    this.budgets.ended(this.request, actual);
  }
}

export class Budgets {
  private readonly counters: BudgetCounters;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly remembered = new Map<string, Remaining>();
  private openCount = 0;
  private settledCount = 0;
  private down = false;

  constructor(private readonly options: BudgetOptions) {
    this.counters = options.counters;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  /** Reservations made and not yet ended (tests: 0 once every call has ended). */
  get open(): number {
    return this.openCount;
  }

  /** Reservations ended so far. */
  get settled(): number {
    return this.settledCount;
  }

  /** The remaining amounts last seen for this key (answers that reserve nothing report them). */
  lastRemaining(principal: Principal): Remaining | undefined {
    return this.remembered.get(principal.keyId);
  }

  /**
   * Reserves `amount` on every budget of the principal, or throws BUDGET_EXCEEDED naming the first
   * budget it does not fit (BUDGET_UNAVAILABLE when they cannot be read and BUDGET_FAIL_MODE=closed).
   */
  async reserve(principal: Principal, amount: CallCost): Promise<Reservation> {
    return this.admit(principal, amount);
  }

  /**
   * `reserve` for the request path: synchronous (a value, or a throw) when the counters are in
   * process and already hold their base; a promise when they answer later (Redis, or a base to load).
   */
  admit(principal: Principal, amount: CallCost): Reservation | Promise<Reservation> {
    const now = this.now();
    const { lines, group } = this.linesFor(principal, now);
    if (lines.length === 0 || (amount.microUsd === 0 && amount.tokens === 0)) return NOTHING_HELD;
    const request: ReserveRequest = { id: reservationId(), group, lines, amount, now, expiresAt: now + this.ttlMs, bases: undefined };
    const { counters } = this;
    if (counters.reserveNow !== undefined) {
      let outcome: ReserveOutcome;
      try {
        outcome = counters.reserveNow(request);
      } catch (err) {
        return this.unavailable(principal, err);
      }
      if (outcome.kind !== 'needs-base') return this.held(principal, request, outcome);
    }
    return this.reserveLater(principal, request);
  }

  /** The reservation when the counters answer asynchronously or a counter needs its base first. */
  private async reserveLater(principal: Principal, request: ReserveRequest): Promise<Reservation> {
    const lines = request.lines as readonly NamedLine[];
    let outcome: ReserveOutcome;
    try {
      outcome = await this.counters.reserve(request);
      if (outcome.kind === 'needs-base') {
        const bases = new Map<string, Used>();
        await Promise.all(
          outcome.lines.map(async (i) => {
            const line = lines[i] as NamedLine;
            bases.set(line.counter, await this.options.spend.spendSince(line.scope, line.scope === 'key' ? principal.keyId : principal.teamId, line.start));
          }),
        );
        outcome = await this.counters.reserve({ ...request, bases });
      }
      if (outcome.kind === 'needs-base') throw new Error('budget counters lost their base twice');
    } catch (err) {
      return this.unavailable(principal, err);
    }
    return this.held(principal, request, outcome);
  }

  /** The counters' answer: a reservation to end once, or the refusal naming the budget. */
  private held(principal: Principal, request: ReserveRequest, outcome: Exclude<ReserveOutcome, { kind: 'needs-base' }>): Reservation {
    const lines = request.lines as readonly NamedLine[];
    const { amount } = request;
    this.recovered();
    const remaining = remainingOf(lines, outcome.used);
    this.remember(principal.keyId, remaining);
    this.options.metrics?.usedRatios(principal.teamName, lines, outcome.used);
    if (outcome.kind === 'refused') {
      const line = lines[outcome.line] as NamedLine;
      this.options.metrics?.refused(principal.teamName, line.limitMicroUsd !== undefined && !fitsUsd(line, outcome.used[outcome.line] as Used, amount) ? 'budget_usd' : 'budget_tokens');
      throw refusal(line, outcome.used[outcome.line] as Used, amount, remaining);
    }
    this.openCount++;
    return new Held(this, request, remaining);
  }

  /** Held.end: the reservation ends (settled to `actual`), once. */
  ended(request: ReserveRequest, actual: CallCost): void {
    this.openCount--;
    this.settledCount++;
    const settle = { id: request.id, group: request.group, lines: request.lines, reserved: request.amount, actual };
    if (this.counters.settleNow !== undefined) {
      this.counters.settleNow(settle);
      return;
    }
    this.counters.settle(settle).catch((err: unknown) => {
      // Not settled: the reservation expires (released) after its TTL; the ledger still holds the spend.
      this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'budget settle failed: the reservation will expire instead');
    });
  }

  /**
   * The principal's lines and counter group, computed once per principal object until the earliest
   * of its periods ends (the store hands out one object per key version: a changed budget is a new
   * object).
   */
  private linesFor(principal: Principal, now: number): PrincipalLines {
    const known = this.lineMemo.get(principal);
    if (known !== undefined && now < known.until) return known;
    const lines = linesOf(principal, now);
    const made = { lines, group: safeId(principal.teamId), until: Math.min(...lines.map((l) => l.resetAt)) };
    this.lineMemo.set(principal, made);
    return made;
  }

  private readonly lineMemo = new WeakMap<Principal, PrincipalLines>();

  private unavailable(principal: Principal, err: unknown): Reservation {
    const { failMode, metrics, logger } = this.options;
    metrics?.unavailable(failMode);
    if (!this.down) {
      this.down = true;
      logger.error({ err: err instanceof Error ? err.message : String(err), failMode }, `budgets cannot be checked (counters or spend unreachable): admission ${failMode === 'closed' ? 'refuses governed calls' : 'admits governed calls unchecked'} until they answer (BUDGET_FAIL_MODE)`);
    }
    if (failMode === 'open') return NOTHING_HELD;
    metrics?.refused(principal.teamName, 'unavailable');
    throw new GatewayError('BUDGET_UNAVAILABLE', 'Budgets cannot be checked right now; the gateway refuses governed calls until they can be (BUDGET_FAIL_MODE=closed). Retry shortly.', { headers: { 'retry-after': '5' } });
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.options.logger.info('budgets can be checked again');
  }

  private remember(keyId: string, remaining: Remaining): void {
    if (!this.remembered.has(keyId) && this.remembered.size >= MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value as string);
    this.remembered.set(keyId, remaining);
  }
}

function fitsUsd(line: BudgetLine, used: Used, amount: CallCost): boolean {
  return line.limitMicroUsd === undefined || used.microUsd + amount.microUsd <= line.limitMicroUsd;
}

/** Every budget of the key, then of its team, for this instant's periods. */
export function linesOf(principal: Principal, now: number): NamedLine[] {
  const lines: NamedLine[] = [];
  const add = (scope: 'key' | 'team', id: string, name: string, budgets: readonly Budget[]): void => {
    for (const b of budgets) {
      if (b.microUsd === undefined && b.tokens === undefined) continue;
      const w = periodWindow(b.period, now);
      lines.push({
        counter: `${scope}:${safeId(id)}:${b.period}:${w.start}`,
        limitMicroUsd: b.microUsd,
        limitTokens: b.tokens,
        expireAt: w.end + COUNTER_GRACE_MS,
        scope,
        name,
        teamName: principal.teamName,
        period: b.period,
        start: w.start,
        resetAt: w.end,
      });
    }
  };
  add('key', principal.keyId, principal.keyName, principal.keyBudgets);
  add('team', principal.teamId, principal.teamName, principal.teamBudgets);
  return lines;
}

/** The least remaining per unit, and the reset of the budget with the least remaining share. */
export function remainingOf(lines: readonly NamedLine[], used: readonly Used[]): Remaining {
  // A plain loop (no closure per line): this runs on every governed call.
  let microUsd: number | undefined;
  let tokens: number | undefined;
  let tightest = Infinity;
  let resetAt = lines[0]?.resetAt ?? 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as NamedLine;
    const u = used[i] ?? ZERO_COST;
    if (line.limitMicroUsd !== undefined) {
      const left = Math.max(0, line.limitMicroUsd - u.microUsd);
      microUsd = Math.min(microUsd ?? Infinity, left);
      const share = line.limitMicroUsd === 0 ? 0 : left / line.limitMicroUsd;
      if (share < tightest) {
        tightest = share;
        resetAt = line.resetAt;
      }
    }
    if (line.limitTokens !== undefined) {
      const left = Math.max(0, line.limitTokens - u.tokens);
      tokens = Math.min(tokens ?? Infinity, left);
      const share = line.limitTokens === 0 ? 0 : left / line.limitTokens;
      if (share < tightest) {
        tightest = share;
        resetAt = line.resetAt;
      }
    }
  }
  return { microUsd, tokens, resetAt };
}

/** Dollars for a message: cents from $1 up, else to the micro-dollar (trailing zeros dropped). */
export function usd(microUsd: number): string {
  const dollars = microUsd / 1_000_000;
  if (dollars >= 1) return dollars.toFixed(2);
  return dollars.toFixed(6).replace(/0+$/, '').replace(/\.$/, '.00');
}

function refusal(line: NamedLine, used: Used, amount: CallCost, remaining: Remaining): GatewayError {
  const owner = line.scope === 'key' ? `key "${line.name}"` : `team "${line.name}"`;
  const reset = new Date(line.resetAt).toISOString();
  const parts: string[] = [];
  if (line.limitMicroUsd !== undefined) parts.push(`$${usd(line.limitMicroUsd)} (used or held: $${usd(used.microUsd)}; this call may cost up to $${usd(amount.microUsd)})`);
  if (line.limitTokens !== undefined) parts.push(`${line.limitTokens} tokens (used or held: ${used.tokens}; this call may use up to ${amount.tokens})`);
  // The remaining-budget headers too, with the reset of the budget that refused.
  const headers: Record<string, string> = {};
  const pairs = budgetHeaders({ ...remaining, resetAt: line.resetAt });
  for (let i = 0; i + 1 < pairs.length; i += 2) headers[pairs[i] as string] = pairs[i + 1] as string;
  return new GatewayError('BUDGET_EXCEEDED', `Budget exceeded: the ${periodAdjective(line.period)} budget of ${owner} is ${parts.join(' and ')}; it resets at ${reset}.`, { headers });
}

/** Answer headers of a governed key (README, Keys, teams and budgets). */
export const BUDGET_HEADERS = { usd: 'x-gateway-budget-remaining-usd', tokens: 'x-gateway-budget-remaining-tokens', reset: 'x-gateway-budget-reset' } as const;

/** Header pairs already made, per Remaining (answers that reuse the key's last values repeat them). */
const madeHeaders = new WeakMap<Remaining, string[]>();
/** The last reset instants in ISO form (one per period in use): toISOString showed in the per-request cost. */
const isoMemo = new Map<number, string>();

function iso(ms: number): string {
  let text = isoMemo.get(ms);
  if (text === undefined) {
    if (isoMemo.size >= 16) isoMemo.clear();
    text = new Date(ms).toISOString();
    isoMemo.set(ms, text);
  }
  return text;
}

/** Micro-dollars as USD with 6 decimals (exactly; integer arithmetic when it is exact, as it is for every amount here). */
export function usdText(microUsd: number): string {
  if (!Number.isSafeInteger(microUsd) || microUsd < 0) return (microUsd / 1_000_000).toFixed(6);
  const whole = Math.floor(microUsd / 1_000_000);
  const fraction = microUsd - whole * 1_000_000;
  // The fraction zero-padded to 6 digits by a constant prefix (no intermediate string to cut).
  return `${whole}${fraction < 10 ? '.00000' : fraction < 100 ? '.0000' : fraction < 1_000 ? '.000' : fraction < 10_000 ? '.00' : fraction < 100_000 ? '.0' : '.'}${fraction}`;
}

/**
 * Appends the header pairs for `remaining` to `out` (USD with 6 decimals: micro-dollars exactly),
 * in the order usd, tokens, reset; a governed answer's head gets them this way, with no array of
 * their own.
 */
export function appendBudgetHeaders(out: string[], remaining: Remaining): void {
  if (remaining.microUsd !== undefined) out.push(BUDGET_HEADERS.usd, usdText(remaining.microUsd));
  if (remaining.tokens !== undefined) out.push(BUDGET_HEADERS.tokens, String(remaining.tokens));
  out.push(BUDGET_HEADERS.reset, iso(remaining.resetAt));
}

/** The header pairs for `remaining`, made anew (see appendBudgetHeaders). */
export function budgetHeaders(remaining: Remaining): string[] {
  const out: string[] = [];
  appendBudgetHeaders(out, remaining);
  return out;
}

/** `budgetHeaders`, made once per Remaining: answers that reserve nothing repeat the key's last values. */
export function lastBudgetHeaders(remaining: Remaining): readonly string[] {
  let made = madeHeaders.get(remaining);
  if (made === undefined) {
    made = budgetHeaders(remaining);
    madeHeaders.set(remaining, made);
  }
  return made;
}
