import { el } from './dom.js';
import type { BudgetJson } from './api.js';

/** A labelled input (label for= id: every control has an accessible name). */
export function field(id: string, label: string, attributes: Record<string, string> = {}): HTMLElement {
  return el('div', { class: 'field' }, el('label', { for: id }, label), el('input', { id, name: id, ...attributes }));
}

export function selectField(id: string, label: string, options: readonly (readonly [string, string])[]): HTMLElement {
  return el('div', { class: 'field' }, el('label', { for: id }, label), el('select', { id, name: id }, ...options.map(([value, text]) => el('option', { value }, text))));
}

export const PERIODS: readonly (readonly [string, string])[] = [
  ['day', 'per day'],
  ['week', 'per week'],
  ['month', 'per month'],
];

/** The fields of one budget (period, USD, tokens), ids prefixed. */
export function budgetFields(prefix: string): HTMLElement[] {
  return [
    selectField(`${prefix}-period`, 'Budget period', PERIODS),
    field(`${prefix}-usd`, 'Budget USD', { type: 'number', min: '0', step: '0.000001' }),
    field(`${prefix}-tokens`, 'Budget tokens', { type: 'number', min: '0', step: '1' }),
  ];
}

export function value(form: HTMLFormElement, id: string): string {
  const control = form.querySelector<HTMLInputElement | HTMLSelectElement>(`#${id}`);
  return control?.value.trim() ?? '';
}

/** The budget the fields describe, or undefined when neither USD nor tokens is filled. */
export function budgetOf(form: HTMLFormElement, prefix: string): BudgetJson | undefined {
  const usd = value(form, `${prefix}-usd`);
  const tokens = value(form, `${prefix}-tokens`);
  if (usd === '' && tokens === '') return undefined;
  const budget: BudgetJson = { period: value(form, `${prefix}-period`) as BudgetJson['period'] };
  if (usd !== '') budget.usd = Number(usd);
  if (tokens !== '') budget.tokens = Number(tokens);
  return budget;
}

/** `budgets` with `next` in place of the budget of the same period. */
export function withBudget(budgets: readonly BudgetJson[], next: BudgetJson | undefined): BudgetJson[] {
  if (next === undefined) return [...budgets];
  return [...budgets.filter((b) => b.period !== next.period), next];
}

/** A form whose submit runs `action` (no navigation); its outcome is announced in its status line. */
export function actionForm(testId: string, heading: string, fields: readonly HTMLElement[], submit: string, action: (form: HTMLFormElement) => Promise<string>): HTMLFormElement {
  const status = el('p', { class: 'status', role: 'status' });
  const form = el('form', { 'data-testid': testId, class: 'action' }, el('h3', {}, heading), ...fields, el('button', { type: 'submit' }, submit), status);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    status.textContent = 'Working…';
    status.classList.remove('error');
    action(form).then(
      (done) => {
        status.textContent = done;
      },
      (err: unknown) => {
        status.textContent = err instanceof Error ? err.message : String(err);
        status.classList.add('error');
      },
    );
  });
  return form;
}
