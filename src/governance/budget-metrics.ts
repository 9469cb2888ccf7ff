import { Counter, Gauge, type Registry } from 'prom-client';
import type { BudgetLine, Used } from './budget-counters.js';
import type { BudgetPeriod } from './model.js';

/**
 * Governance metrics. The `team` label is a team's name: teams are configured by the admin API, so
 * the set is bounded by the store, and capped here anyway (past MAX_TEAMS names, `other`).
 * Refusal reasons: budget_usd, budget_tokens, unavailable (BUDGET_FAIL_MODE=closed), rpm, tpm, concurrency.
 *
 * Per-call values (used ratios, team spend, the ledger's depth) are kept in plain fields and handed
 * to prom-client when it collects (a scrape): setting a labelled metric hashes its labels, and that
 * showed in the per-request cost. What a scrape reads is the same.
 */
export const MAX_TEAM_LABELS = 200;

export class BudgetMetrics {
  private readonly teams = new Set<string>();
  readonly usedRatio: Gauge<'team' | 'period'>;
  readonly refusals: Counter<'team' | 'reason'>;
  readonly unavailableCalls: Counter<'fail_mode'>;
  readonly teamSpend: Counter<'team'>;
  readonly ledgerQueued: Gauge;
  readonly ledgerDropped: Counter;
  readonly ledgerWritten: Counter;
  readonly ledgerFailures: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.usedRatio = new Gauge({ name: 'claude_gateway_budget_used_ratio', help: 'Share of a team budget used or held by open reservations at the last admission, per period', labelNames: ['team', 'period'], aggregator: 'max', registers, collect: () => this.flushRatios() });
    this.refusals = new Counter({ name: 'claude_gateway_budget_refusals_total', help: 'Governed calls refused, per team and reason (budget_usd, budget_tokens, unavailable, rpm, tpm, concurrency)', labelNames: ['team', 'reason'], registers });
    this.unavailableCalls = new Counter({ name: 'claude_gateway_budget_unavailable_total', help: 'Governed calls admitted (open) or refused (closed) while budgets could not be checked (BUDGET_FAIL_MODE)', labelNames: ['fail_mode'], registers });
    this.teamSpend = new Counter({ name: 'claude_gateway_team_spend_usd_total', help: 'Billed spend of database keys per team, in USD at list prices (the bill is authoritative)', labelNames: ['team'], registers, collect: () => this.flushSpend() });
    this.ledgerQueued = new Gauge({ name: 'claude_gateway_ledger_queue_rows', help: 'Ledger rows waiting to be written', aggregator: 'sum', registers, collect: () => this.ledgerQueued.set(this.ledgerDepth?.() ?? 0) });
    this.ledgerDropped = new Counter({ name: 'claude_gateway_ledger_dropped_total', help: 'Ledger rows dropped (oldest first) because the queue was full while the sink failed', registers });
    this.ledgerWritten = new Counter({ name: 'claude_gateway_ledger_written_total', help: 'Ledger rows written to the sink', registers });
    this.ledgerFailures = new Counter({ name: 'claude_gateway_ledger_write_failures_total', help: 'Ledger batch writes that failed (rows kept and retried)', registers });
  }

  /** A team's name as a label: itself for the first MAX_TEAM_LABELS teams seen, then `other`. */
  team(name: string): string {
    if (this.teams.has(name)) return name;
    if (this.teams.size >= MAX_TEAM_LABELS) return 'other';
    this.teams.add(name);
    return name;
  }

  refused(team: string, reason: string): void {
    this.refusals.inc({ team: this.team(team), reason });
  }

  /** The ledger writer's rows held (set by the writer; read at collect). */
  ledgerDepth: (() => number) | undefined;

  /** Spend not yet added to the counter, per team (micro-dollars; bounded by MAX_TEAM_LABELS). */
  private readonly spendPending = new Map<string, { microUsd: number }>();
  /** Used ratios not yet set on the gauge, per counter (one team budget in one period; bounded). */
  private readonly ratioPending = new Map<string, { team: string; period: BudgetPeriod; ratio: number }>();

  spent(team: string, microUsd: number): void {
    if (microUsd <= 0) return;
    const pending = this.spendPending.get(team);
    if (pending !== undefined) pending.microUsd += microUsd;
    else if (this.spendPending.size < MAX_TEAM_LABELS) this.spendPending.set(team, { microUsd });
    else this.teamSpend.inc({ team: this.team(team) }, microUsd / 1_000_000);
  }

  private flushSpend(): void {
    for (const [team, pending] of this.spendPending) {
      if (pending.microUsd === 0) continue;
      this.teamSpend.inc({ team: this.team(team) }, pending.microUsd / 1_000_000);
      pending.microUsd = 0;
    }
  }

  private flushRatios(): void {
    for (const p of this.ratioPending.values()) this.usedRatio.set({ team: this.team(p.team), period: p.period }, p.ratio);
    // Counters of past periods go; the gauge keeps each label set's last value.
    this.ratioPending.clear();
  }

  unavailable(failMode: string): void {
    this.unavailableCalls.inc({ fail_mode: failMode });
  }

  /** The used share of the team's budgets (key budgets are not labelled: keys are not bounded). */
  usedRatios(team: string, lines: readonly (BudgetLine & { scope: 'key' | 'team'; period: BudgetPeriod })[], used: readonly Used[]): void {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as BudgetLine & { scope: 'key' | 'team'; period: BudgetPeriod };
      const u = used[i];
      if (line.scope !== 'team' || u === undefined) continue;
      const byUsd = line.limitMicroUsd !== undefined && line.limitMicroUsd > 0;
      const byTokens = line.limitTokens !== undefined && line.limitTokens > 0;
      if (!byUsd && !byTokens) continue;
      const usd = byUsd ? u.microUsd / (line.limitMicroUsd) : -Infinity;
      const ratio = byTokens ? Math.max(usd, u.tokens / (line.limitTokens)) : usd;
      const pending = this.ratioPending.get(line.counter);
      if (pending !== undefined) pending.ratio = ratio;
      else if (this.ratioPending.size < 3 * MAX_TEAM_LABELS) this.ratioPending.set(line.counter, { team, period: line.period, ratio });
      else this.usedRatio.set({ team: this.team(team), period: line.period }, ratio);
    }
  }
}
