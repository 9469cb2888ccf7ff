import { budgetsText, change, getJson, pollEvery, role, type KeyJson, type TeamJson } from './api.js';
import { el, table } from './dom.js';
import { actionForm, budgetFields, budgetOf, field, selectField, value, withBudget } from './forms.js';

/**
 * The Keys page: keys and teams from the admin API's listings, polled; an admin also gets the
 * forms (create, rotate, revoke, limits and budgets; teams: create, budgets). A key's secret is
 * shown once, in a panel outside the polled tables: dismissing it removes the node and the only
 * reference to the string; nothing stores it (no storage, no URL), so a reload shows it nowhere.
 */
const app = document.getElementById('app') as HTMLElement;
let teams: TeamJson[] = [];
let keys: KeyJson[] = [];

const secretSlot = el('div', { 'data-testid': 'secret-slot' });
/** Where a row action's failure is announced. */
const actionStatus = el('p', { class: 'status error', role: 'status', 'data-testid': 'action-status' });
const problem = (err: unknown): void => {
  actionStatus.textContent = err instanceof Error ? err.message : String(err);
};
const keyTable = el('div', { 'data-testid': 'keys-table' });
const teamTable = el('div', { 'data-testid': 'teams-table' });
const teamSelects: HTMLSelectElement[] = [];
const keySelects: HTMLSelectElement[] = [];

function showSecret(what: string, secret: string): void {
  const dismiss = el('button', { type: 'button', 'data-testid': 'dismiss-secret' }, 'I have copied it: dismiss');
  const panel = el(
    'section',
    { class: 'secret', role: 'alert', 'aria-label': 'New key secret' },
    el('h3', {}, what),
    el('p', {}, 'Copy this secret now: it is shown this once and cannot be shown again.'),
    el('code', { 'data-testid': 'secret' }, secret),
    dismiss,
  );
  dismiss.addEventListener('click', () => secretSlot.replaceChildren());
  secretSlot.replaceChildren(panel);
}

const teamName = (id: string): string => teams.find((t) => t.id === id)?.name ?? id;

function limitsText(k: KeyJson): string {
  const l = k.limits;
  const parts = [
    l.models === undefined ? undefined : `models: ${l.models.join(', ')}`,
    l.requests_per_minute === undefined ? undefined : `${l.requests_per_minute} req/min`,
    l.tokens_per_minute === undefined ? undefined : `${l.tokens_per_minute} tokens/min`,
    l.max_concurrent === undefined ? undefined : `${l.max_concurrent} at once`,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? 'none' : parts.join('; ');
}

function keyActions(k: KeyJson): Node {
  if (k.revoked_at !== null) return document.createTextNode('–');
  const rotate = el('button', { type: 'button', 'data-action': 'rotate', 'aria-label': `Rotate ${k.name}` }, 'Rotate');
  const revoke = el('button', { type: 'button', 'data-action': 'revoke', class: 'danger', 'aria-label': `Revoke ${k.name}` }, 'Revoke');
  rotate.addEventListener('click', () => {
    void change<{ secret: string }>('POST', `/admin/keys/${k.id}/rotate`)
      .then((issued) => {
        showSecret(`New secret of ${k.name}`, issued.secret);
        return refresh();
      })
      .catch(problem);
  });
  revoke.addEventListener('click', () => {
    if (!confirm(`Revoke the key ${k.name}? Calls with it are refused from now on; this cannot be undone.`)) return;
    void change('POST', `/admin/keys/${k.id}/revoke`)
      .then(() => refresh())
      .catch(problem);
  });
  return el('span', { class: 'actions' }, rotate, revoke);
}

function fillSelect(select: HTMLSelectElement, options: readonly (readonly [string, string])[]): void {
  const chosen = select.value;
  select.replaceChildren(...options.map(([v, text]) => el('option', { value: v }, text)));
  if (options.some(([v]) => v === chosen)) select.value = chosen;
}

function render(): void {
  const headers = ['name', 'prefix', 'team', 'user', 'limits', 'budgets', 'expires', 'revoked'];
  if (role === 'admin') headers.push('actions');
  keyTable.replaceChildren(
    table(
      'Keys',
      headers,
      keys.map((k) => {
        const row: (string | Node)[] = [k.name, k.prefix, teamName(k.team_id), k.user_id ?? '–', limitsText(k), budgetsText(k.budgets), k.expires_at ?? 'never', k.revoked_at ?? 'no'];
        if (role === 'admin') row.push(keyActions(k));
        return row;
      }),
      'keys',
    ),
  );
  teamTable.replaceChildren(table('Teams', ['name', 'id', 'budgets'], teams.map((t) => [t.name, t.id, budgetsText(t.budgets)]), 'teams'));
  for (const s of teamSelects) fillSelect(s, teams.map((t) => [t.id, t.name]));
  for (const s of keySelects) fillSelect(s, keys.filter((k) => k.revoked_at === null).map((k) => [k.id, `${k.name} (${k.prefix})`]));
}

async function refresh(): Promise<void> {
  const [t, k] = await Promise.all([getJson<{ data: TeamJson[] }>('/console/api/admin/teams'), getJson<{ data: KeyJson[] }>('/console/api/admin/keys')]);
  teams = t.data;
  keys = k.data;
  render();
}

const list = (text: string): string[] | undefined => {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return items.length === 0 ? undefined : items;
};
const int = (text: string): number | undefined => (text === '' ? undefined : Number(text));

function limitsOf(form: HTMLFormElement, prefix: string): KeyJson['limits'] | undefined {
  const limits: KeyJson['limits'] = {};
  const models = list(value(form, `${prefix}-models`));
  if (models !== undefined) limits.models = models;
  const rpm = int(value(form, `${prefix}-rpm`));
  if (rpm !== undefined) limits.requests_per_minute = rpm;
  const tpm = int(value(form, `${prefix}-tpm`));
  if (tpm !== undefined) limits.tokens_per_minute = tpm;
  const concurrent = int(value(form, `${prefix}-concurrent`));
  if (concurrent !== undefined) limits.max_concurrent = concurrent;
  return Object.keys(limits).length === 0 ? undefined : limits;
}

function limitFields(prefix: string): HTMLElement[] {
  return [
    field(`${prefix}-models`, 'Models (comma-separated; * ends a prefix)'),
    field(`${prefix}-rpm`, 'Requests per minute', { type: 'number', min: '1', step: '1' }),
    field(`${prefix}-tpm`, 'Tokens per minute', { type: 'number', min: '1', step: '1' }),
    field(`${prefix}-concurrent`, 'Concurrent requests', { type: 'number', min: '1', step: '1' }),
  ];
}

function teamSelect(id: string, label: string): HTMLElement {
  const wrap = selectField(id, label, []);
  teamSelects.push(wrap.querySelector('select') as HTMLSelectElement);
  return wrap;
}

function keySelect(id: string, label: string): HTMLElement {
  const wrap = selectField(id, label, []);
  keySelects.push(wrap.querySelector('select') as HTMLSelectElement);
  return wrap;
}

function forms(): HTMLElement[] {
  const createKey = actionForm(
    'create-key',
    'Create a key',
    [teamSelect('ck-team', 'Team'), field('ck-name', 'Name', { maxlength: '200' }), field('ck-user', 'User id (optional)', { maxlength: '100' }), ...limitFields('ck'), ...budgetFields('ck'), field('ck-expires', 'Expires (optional)', { type: 'date' })],
    'Create key',
    async (form) => {
      const body: Record<string, unknown> = { team_id: value(form, 'ck-team') };
      const name = value(form, 'ck-name');
      if (name !== '') body.name = name;
      const user = value(form, 'ck-user');
      if (user !== '') body.user_id = user;
      const limits = limitsOf(form, 'ck');
      if (limits !== undefined) body.limits = limits;
      const budget = budgetOf(form, 'ck');
      if (budget !== undefined) body.budgets = [budget];
      const expires = value(form, 'ck-expires');
      if (expires !== '') body.expires_at = expires;
      const issued = await change<{ key: KeyJson; secret: string }>('POST', '/admin/keys', body);
      showSecret(`Key ${issued.key.name} created`, issued.secret);
      form.reset();
      await refresh();
      return `Created ${issued.key.name} (${issued.key.prefix}…).`;
    },
  );
  const setKey = actionForm('set-key', "Set a key's limits and budget", [keySelect('sk-key', 'Key'), ...limitFields('sk'), ...budgetFields('sk')], 'Save', async (form) => {
    const id = value(form, 'sk-key');
    const key = keys.find((k) => k.id === id);
    if (key === undefined) throw new Error('Choose a key.');
    const body: Record<string, unknown> = { budgets: withBudget(key.budgets, budgetOf(form, 'sk')) };
    const limits = limitsOf(form, 'sk');
    if (limits !== undefined) body.limits = limits;
    await change('PATCH', `/admin/keys/${id}`, body);
    await refresh();
    return `Saved ${key.name}.`;
  });
  const createTeam = actionForm('create-team', 'Create a team', [field('ct-name', 'Team name', { maxlength: '200', required: '' }), ...budgetFields('ct')], 'Create team', async (form) => {
    const budget = budgetOf(form, 'ct');
    const team = await change<TeamJson>('POST', '/admin/teams', { name: value(form, 'ct-name'), ...(budget === undefined ? {} : { budgets: [budget] }) });
    form.reset();
    await refresh();
    return `Created team ${team.name}.`;
  });
  const setTeam = actionForm('set-team', "Set a team's budget", [teamSelect('st-team', 'Team'), ...budgetFields('st')], 'Save', async (form) => {
    const id = value(form, 'st-team');
    const team = teams.find((t) => t.id === id);
    if (team === undefined) throw new Error('Choose a team.');
    await change('PATCH', `/admin/teams/${id}`, { budgets: withBudget(team.budgets, budgetOf(form, 'st')) });
    await refresh();
    return `Saved ${team.name}.`;
  });
  return [el('div', { class: 'forms' }, createKey, setKey, createTeam, setTeam)];
}

export function startKeys(): void {
  app.replaceChildren(el('h2', {}, 'Keys'), secretSlot, actionStatus, keyTable, teamTable, ...(role === 'admin' ? forms() : []));
  pollEvery(refresh);
}
