/**
 * The governance data model (issue 26): what a gateway key issued by the gateway carries, who owns it,
 * and one ledger row. Declared once here; the store (SQL schema), the admin API (zod schemas), the
 * admission (budgets, limits) and the ledger writer derive from these types.
 *
 * Money is held in micro-dollars (integers, 1 USD = 1_000_000) so sums are exact in SQL and in Redis.
 */

export type BudgetPeriod = 'day' | 'week' | 'month';

/** A budget over one calendar period in UTC (day; week from Monday 00:00; month from the 1st). */
export interface Budget {
  readonly period: BudgetPeriod;
  /** Spend allowed per period, in micro-dollars. */
  readonly microUsd?: number | undefined;
  /** Tokens allowed per period (input + output + cache writes + cache reads). */
  readonly tokens?: number | undefined;
}

/** Per-key limits; each absent field means "no limit of this kind". */
export interface KeyLimits {
  /** Model ids (or prefixes ending in `*`) the key may call. */
  readonly models?: readonly string[] | undefined;
  readonly requestsPerMinute?: number | undefined;
  readonly tokensPerMinute?: number | undefined;
  readonly maxConcurrent?: number | undefined;
}

/** Who a presented database key belongs to; the auth stage attaches it to the request's context. */
export interface Principal {
  readonly keyId: string;
  readonly keyName: string;
  readonly teamId: string;
  readonly teamName: string;
  readonly userId: string | undefined;
  readonly limits: KeyLimits;
  readonly keyBudgets: readonly Budget[];
  readonly teamBudgets: readonly Budget[];
  /** Epoch milliseconds; undefined: never expires. */
  readonly expiresAt: number | undefined;
}

/** How an answer reached the client: an upstream call of its own, or a reuse that cost nothing upstream. */
export type LedgerSource = 'upstream' | 'coalesced' | 'lingering' | 'cache';

/** One row per upstream call and per reused answer. Never holds a key secret. */
export interface LedgerRow {
  readonly at: number;
  readonly requestId: string;
  readonly keyId: string | undefined;
  readonly teamId: string | undefined;
  readonly userId: string | undefined;
  readonly mode: string;
  readonly model: string | undefined;
  readonly upstream: string | undefined;
  readonly status: number;
  readonly source: LedgerSource;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheCreationInputTokens: number;
  readonly cacheReadInputTokens: number;
  /** What the call cost (upstream), or 0 for a reuse. */
  readonly costMicroUsd: number;
  /** What a reuse would have cost had it been its own call; 0 for an upstream call. */
  readonly savedMicroUsd: number;
  readonly latencyMs: number;
  readonly claudeCodeSession: string | undefined;
}
