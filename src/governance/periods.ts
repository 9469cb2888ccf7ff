import type { BudgetPeriod } from './model.js';

/** A budget period's window in UTC, epoch milliseconds: [start, end). Week: from Monday 00:00. */
export interface PeriodWindow {
  readonly start: number;
  readonly end: number;
}

const DAY_MS = 86_400_000;

export function periodWindow(period: BudgetPeriod, nowMs: number): PeriodWindow {
  const now = new Date(nowMs);
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  if (period === 'month') return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  const day = Date.UTC(y, m, d);
  if (period === 'day') return { start: day, end: day + DAY_MS };
  // getUTCDay: 0 = Sunday; days since Monday.
  const start = day - ((now.getUTCDay() + 6) % 7) * DAY_MS;
  return { start, end: start + 7 * DAY_MS };
}

/** The adjective a refusal message uses ("daily budget"). */
export function periodAdjective(period: BudgetPeriod): string {
  return period === 'day' ? 'daily' : period === 'week' ? 'weekly' : 'monthly';
}
