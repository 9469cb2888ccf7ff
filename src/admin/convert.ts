import type { z } from 'zod';
import type { Budget, KeyLimits } from '../governance/model.js';
import type { KeyRecord, SpendRow, Team } from '../governance/store.js';
import type { budget as budgetSchema, keyOut, limits as limitsSchema, teamOut } from './schemas.js';

/** USD in the API, micro-dollars in the store: integers, so sums are exact. */
export const toMicroUsd = (usd: number): number => Math.round(usd * 1_000_000);
export const toUsd = (microUsd: number): number => microUsd / 1_000_000;

/** An ISO date (UTC midnight) or date-time, already validated by the schema; epoch ms. */
export const toEpochMs = (iso: string): number => Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
const isoOf = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

type BudgetIn = z.infer<typeof budgetSchema>;
type LimitsIn = z.infer<typeof limitsSchema>;

export function budgetsIn(list: readonly BudgetIn[]): Budget[] {
  return list.map((b) => ({ period: b.period, ...(b.usd === undefined ? {} : { microUsd: toMicroUsd(b.usd) }), ...(b.tokens === undefined ? {} : { tokens: b.tokens }) }));
}

export function budgetsOut(list: readonly Budget[]): BudgetIn[] {
  return list.map((b) => ({ period: b.period, ...(b.microUsd === undefined ? {} : { usd: toUsd(b.microUsd) }), ...(b.tokens === undefined ? {} : { tokens: b.tokens }) }));
}

export function limitsIn(l: LimitsIn): KeyLimits {
  const out: { -readonly [K in keyof KeyLimits]: KeyLimits[K] } = {};
  if (l.models !== undefined) out.models = l.models;
  if (l.requests_per_minute !== undefined) out.requestsPerMinute = l.requests_per_minute;
  if (l.tokens_per_minute !== undefined) out.tokensPerMinute = l.tokens_per_minute;
  if (l.max_concurrent !== undefined) out.maxConcurrent = l.max_concurrent;
  return out;
}

export function limitsOut(l: KeyLimits): LimitsIn {
  const out: LimitsIn = {};
  if (l.models !== undefined) out.models = [...l.models];
  if (l.requestsPerMinute !== undefined) out.requests_per_minute = l.requestsPerMinute;
  if (l.tokensPerMinute !== undefined) out.tokens_per_minute = l.tokensPerMinute;
  if (l.maxConcurrent !== undefined) out.max_concurrent = l.maxConcurrent;
  return out;
}

export function teamJson(team: Team): z.infer<typeof teamOut> {
  return {
    id: team.id,
    name: team.name,
    budgets: budgetsOut(team.budgets),
    metadata: { ...team.metadata },
    created_at: isoOf(team.createdAt) as string,
    updated_at: isoOf(team.updatedAt) as string,
  };
}

export function keyJson(key: KeyRecord): z.infer<typeof keyOut> {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    team_id: key.teamId,
    user_id: key.userId ?? null,
    limits: limitsOut(key.limits),
    budgets: budgetsOut(key.budgets),
    metadata: { ...key.metadata },
    expires_at: isoOf(key.expiresAt),
    created_at: isoOf(key.createdAt) as string,
    revoked_at: isoOf(key.revokedAt),
    updated_at: isoOf(key.updatedAt) as string,
  };
}

export function spendJson(row: SpendRow) {
  return {
    group: row.group,
    requests: row.requests,
    cost_usd: toUsd(row.costMicroUsd),
    saved_usd: toUsd(row.savedMicroUsd),
    input_tokens: row.inputTokens,
    output_tokens: row.outputTokens,
    cache_creation_input_tokens: row.cacheCreationInputTokens,
    cache_read_input_tokens: row.cacheReadInputTokens,
  };
}
