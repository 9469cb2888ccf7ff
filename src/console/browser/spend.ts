import { getJson, pollEvery, type BudgetBarJson, type KeyJson, type SpendRowJson, type TeamJson } from './api.js';
import { el, table } from './dom.js';
import { selectField } from './forms.js';
import { count, usd } from './format.js';

/**
 * The Spend page: the ledger grouped by team, key, mode, model and Claude Code session (the admin
 * API's spend query) over the chosen period, and each team's and key's budgets as bars (spent in
 * the current period / limit, and the reset). Every number is the ledger's, as read.
 */
const app = document.getElementById('app') as HTMLElement;
const DAY_MS = 86_400_000;
/** Sessions listed: the most expensive first. */
const TOP_SESSIONS = 10;

/** The start of this UTC day, week (Monday) or month: the same windows budgets use. */
function since(period: string, now = new Date()): string {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const day = Date.UTC(y, m, now.getUTCDate());
  const start = period === 'month' ? Date.UTC(y, m, 1) : period === 'week' ? day - ((now.getUTCDay() + 6) % 7) * DAY_MS : day;
  return new Date(start).toISOString();
}

const periodBox = selectField('spend-period', 'Period', [
  ['day', 'today'],
  ['week', 'this week'],
  ['month', 'this month'],
]);
const periodSelect = periodBox.querySelector('select') as HTMLSelectElement;
const bars = el('div', { 'data-testid': 'budget-bars' });
const tables = el('div', { 'data-testid': 'spend-tables' });

function tokens(r: SpendRowJson): number {
  return r.input_tokens + r.output_tokens + r.cache_creation_input_tokens + r.cache_read_input_tokens;
}

function spendTable(caption: string, column: string, rows: readonly SpendRowJson[], name: (group: string | null) => string, testId: string): HTMLTableElement {
  return table(caption, [column, 'requests', 'cost', 'saved', 'tokens'], rows.map((r) => [name(r.group), count(r.requests), usd(r.cost_usd), usd(r.saved_usd), count(tokens(r))]), testId);
}

function bar(b: BudgetBarJson): HTMLElement {
  const unit = b.limitUsd !== null ? { spent: b.spentUsd, limit: b.limitUsd, text: `${usd(b.spentUsd)} of ${usd(b.limitUsd)}` } : { spent: b.spentTokens, limit: b.limitTokens ?? 0, text: `${count(b.spentTokens)} of ${count(b.limitTokens ?? 0)} tokens` };
  const label = `${b.scope} ${b.name}, ${b.period} budget`;
  return el(
    'li',
    { class: 'bar', 'data-scope': b.scope, 'data-id': b.id, 'data-period': b.period, 'data-spent': String(unit.spent), 'data-limit': String(unit.limit) },
    el('div', { class: 'label' }, `${b.scope === 'team' ? 'Team' : 'Key'} `, el('strong', {}, b.name), ` · ${b.period}`),
    el('meter', { min: '0', max: String(unit.limit), value: String(Math.min(unit.spent, unit.limit)), 'aria-label': label }),
    el('div', { class: 'numbers' }, `${unit.text} · resets ${b.resetAt}`),
  );
}

async function refresh(): Promise<void> {
  const from = encodeURIComponent(since(periodSelect.value));
  const spend = (group: string): Promise<{ data: SpendRowJson[] }> => getJson(`/console/api/admin/spend?groupBy=${group}&from=${from}`);
  const [teams, keys, byTeam, byKey, byMode, byModel, bySession, budget] = await Promise.all([
    getJson<{ data: TeamJson[] }>('/console/api/admin/teams'),
    getJson<{ data: KeyJson[] }>('/console/api/admin/keys'),
    spend('team'),
    spend('key'),
    spend('mode'),
    spend('model'),
    spend('session'),
    getJson<{ bars: BudgetBarJson[]; truncated: boolean }>('/console/api/budgets'),
  ]);
  const teamName = new Map(teams.data.map((t) => [t.id, t.name]));
  const keyName = new Map(keys.data.map((k) => [k.id, `${k.name} (${k.prefix})`]));
  const named = (names: Map<string, string>) => (group: string | null) => (group === null ? '(none)' : (names.get(group) ?? group));
  const plain = (group: string | null): string => group ?? '(none)';
  const sessions = bySession.data.filter((r) => r.group !== null).sort((a, b) => b.cost_usd - a.cost_usd).slice(0, TOP_SESSIONS);
  bars.replaceChildren(
    el('h3', {}, 'Budgets this period'),
    budget.bars.length === 0 ? el('p', {}, 'No team or key has a budget.') : el('ul', { class: 'bars' }, ...budget.bars.map(bar)),
    ...(budget.truncated ? [el('p', {}, 'Only the first budgets are shown.')] : []),
  );
  tables.replaceChildren(
    spendTable('By team', 'team', byTeam.data, named(teamName), 'spend-team'),
    spendTable('By key', 'key', byKey.data, named(keyName), 'spend-key'),
    spendTable('By mode', 'mode', byMode.data, plain, 'spend-mode'),
    spendTable('By model', 'model', byModel.data, plain, 'spend-model'),
    spendTable(`Top ${TOP_SESSIONS} Claude Code sessions by cost`, 'session', sessions, plain, 'spend-session'),
  );
}

export function startSpend(): void {
  app.replaceChildren(el('h2', {}, 'Spend'), periodBox, bars, tables);
  periodSelect.addEventListener('change', () => void refresh());
  pollEvery(refresh);
}
