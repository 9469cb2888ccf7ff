import type { Budget } from '../governance/model.js';
import { periodWindow } from '../governance/periods.js';
import type { GovernanceStore } from '../governance/store.js';

/** One budget of a team or key in its current period: what the ledger says was spent, against the limit. */
export interface BudgetBar {
  readonly scope: 'team' | 'key';
  readonly id: string;
  readonly name: string;
  readonly period: Budget['period'];
  readonly spentUsd: number;
  readonly limitUsd: number | null;
  readonly spentTokens: number;
  readonly limitTokens: number | null;
  /** ISO 8601: when the period ends and the budget resets. */
  readonly resetAt: string;
}

/** Bars shown at most (teams first, then unrevoked keys): one ledger sum each, so the reading stays bounded. */
export const MAX_BUDGET_BARS = 200;

/**
 * Every team's and unrevoked key's budgets with their spend this period, from the ledger
 * (store.spendSince: upstream calls only, as admission counts them). Read on demand by the Spend
 * page, never on the request path.
 */
export async function budgetBars(store: GovernanceStore, now: number): Promise<{ at: number; bars: BudgetBar[]; truncated: boolean }> {
  const owners: { scope: 'team' | 'key'; id: string; name: string; budgets: readonly Budget[] }[] = [];
  for (const team of await store.listTeams()) owners.push({ scope: 'team', id: team.id, name: team.name, budgets: team.budgets });
  for (const key of await store.listKeys()) if (key.revokedAt === undefined) owners.push({ scope: 'key', id: key.id, name: key.name, budgets: key.budgets });
  const bars: BudgetBar[] = [];
  let truncated = false;
  for (const owner of owners) {
    for (const budget of owner.budgets) {
      if (bars.length >= MAX_BUDGET_BARS) {
        truncated = true;
        break;
      }
      const window = periodWindow(budget.period, now);
      const spent = await store.spendSince(owner.scope, owner.id, window.start);
      bars.push({
        scope: owner.scope,
        id: owner.id,
        name: owner.name,
        period: budget.period,
        spentUsd: spent.microUsd / 1_000_000,
        limitUsd: budget.microUsd === undefined ? null : budget.microUsd / 1_000_000,
        spentTokens: spent.tokens,
        limitTokens: budget.tokens ?? null,
        resetAt: new Date(window.end).toISOString(),
      });
    }
  }
  return { at: now, bars, truncated };
}
