import { Counter, Gauge, type Registry } from 'prom-client';
import type { BudgetLine, Used } from './budget-counters.js';
import type { BudgetPeriod } from './model.js';

/**
 * Governance metrics. The `team` label is a team's name: teams are configured by the admin API, so
 * the set is bounded by the store, and capped here anyway (past MAX_TEAMS names, `other`).
 * Refusal reasons: budget_usd, budget_tokens, unavailable (BUDGET_FAIL_MODE=closed), rpm, tpm, concurrency.
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
    this.usedRatio = new Gauge({ name: 'claude_gateway_budget_used_ratio', help: 'Share of a team budget used or held by open reservations at the last admission, per period', labelNames: ['team', 'period'], aggregator: 'max', registers });
    this.refusals = new Counter({ name: 'claude_gateway_budget_refusals_total', help: 'Governed calls refused, per team and reason (budget_usd, budget_tokens, unavailable, rpm, tpm, concurrency)', labelNames: ['team', 'reason'], registers });
    this.unavailableCalls = new Counter({ name: 'claude_gateway_budget_unavailable_total', help: 'Governed calls admitted (open) or refused (closed) while budgets could not be checked (BUDGET_FAIL_MODE)', labelNames: ['fail_mode'], registers });
    this.teamSpend = new Counter({ name: 'claude_gateway_team_spend_usd_total', help: 'Billed spend of database keys per team, in USD at list prices (the bill is authoritative)', labelNames: ['team'], registers });
    this.ledgerQueued = new Gauge({ name: 'claude_gateway_ledger_queue_rows', help: 'Ledger rows waiting to be written', aggregator: 'sum', registers });
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

  spent(team: string, microUsd: number): void {
    if (microUsd <= 0) return;
    let child = this.spendChildren.get(team);
    if (child === undefined) {
      child = this.teamSpend.labels({ team: this.team(team) });
      if (this.spendChildren.size < MAX_TEAM_LABELS) this.spendChildren.set(team, child);
    }
    child.inc(microUsd / 1_000_000);
  }

  /** Label children by team (label hashing per call showed in the per-request cost). */
  private readonly spendChildren = new Map<string, { inc(value: number): void }>();
  private readonly ratioChildren = new Map<string, { set(value: number): void }>();

  unavailable(failMode: string): void {
    this.unavailableCalls.inc({ fail_mode: failMode });
  }

  /** The used share of the team's budgets (key budgets are not labelled: keys are not bounded). */
  usedRatios(team: string, lines: readonly (BudgetLine & { scope: 'key' | 'team'; period: BudgetPeriod })[], used: readonly Used[]): void {
    lines.forEach((line, i) => {
      if (line.scope !== 'team') return;
      const u = used[i];
      if (u === undefined) return;
      const ratios: number[] = [];
      if (line.limitMicroUsd !== undefined && line.limitMicroUsd > 0) ratios.push(u.microUsd / line.limitMicroUsd);
      if (line.limitTokens !== undefined && line.limitTokens > 0) ratios.push(u.tokens / line.limitTokens);
      if (ratios.length === 0) return;
      const key = `${team}\0${line.period}`;
      let child = this.ratioChildren.get(key);
      if (child === undefined) {
        child = this.usedRatio.labels({ team: this.team(team), period: line.period });
        if (this.ratioChildren.size < 3 * MAX_TEAM_LABELS) this.ratioChildren.set(key, child);
      }
      child.set(Math.max(...ratios));
    });
  }
}
