/**
 * The console's JSON calls: readings and the admin API's operations under /console/api/admin/...
 * (the admin API's own route table and validation). Changes carry the session's CSRF token, which
 * the shell page holds in <body data-csrf>; a 401 sends the browser to the login.
 */
export const POLL_MS = 2_000;

export const role = document.body.dataset.role === 'admin' ? 'admin' : 'viewer';

export class ApiError extends Error {}

async function answer<T>(response: Response): Promise<T> {
  if (response.status === 401) {
    location.assign('/console/login');
    throw new ApiError('logged out');
  }
  const body = (await response.json()) as T & { error?: { message?: string } };
  if (!response.ok) throw new ApiError(body.error?.message ?? `HTTP ${response.status}`);
  return body;
}

export async function getJson<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } }));
}

/** A change through the admin API's dispatch (POST or PATCH), with the CSRF token. */
export async function change<T>(method: 'POST' | 'PATCH', adminPath: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', 'x-csrf-token': document.body.dataset.csrf ?? '' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return answer<T>(await fetch(`/console/api${adminPath}`, { method, credentials: 'same-origin', headers, body: body === undefined ? null : JSON.stringify(body) }));
}

export interface BudgetJson {
  period: 'day' | 'week' | 'month';
  usd?: number;
  tokens?: number;
}

export interface TeamJson {
  id: string;
  name: string;
  budgets: BudgetJson[];
}

export interface KeyJson {
  id: string;
  name: string;
  prefix: string;
  team_id: string;
  user_id: string | null;
  limits: { models?: string[]; requests_per_minute?: number; tokens_per_minute?: number; max_concurrent?: number };
  budgets: BudgetJson[];
  expires_at: string | null;
  revoked_at: string | null;
}

export interface SpendRowJson {
  group: string | null;
  requests: number;
  cost_usd: number;
  saved_usd: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface BudgetBarJson {
  scope: 'team' | 'key';
  id: string;
  name: string;
  period: BudgetJson['period'];
  spentUsd: number;
  limitUsd: number | null;
  spentTokens: number;
  limitTokens: number | null;
  resetAt: string;
}

export interface FlightJson {
  mode: string | undefined;
  model: string | undefined;
  tenant: string | undefined;
  subscribers: number;
  bytes: number;
  ageSeconds: number | undefined;
}

/** Budgets as one line of text: `day: $5.00 · 10,000 tokens`. */
export function budgetsText(budgets: readonly BudgetJson[]): string {
  if (budgets.length === 0) return 'none';
  return budgets
    .map((b) => `${b.period}: ${[b.usd === undefined ? undefined : `$${b.usd}`, b.tokens === undefined ? undefined : `${b.tokens.toLocaleString('en-US')} tokens`].filter((x) => x !== undefined).join(' · ')}`)
    .join('; ');
}

/** Re-runs `read` every POLL_MS (after each one ends); a failure marks the page stale and the next poll tries again. */
export function pollEvery(read: () => Promise<void>): void {
  const app = document.getElementById('app') as HTMLElement;
  const tick = async (): Promise<void> => {
    try {
      await read();
      app.removeAttribute('data-stale');
      document.body.dataset.readingAt = String(Date.now());
    } catch {
      app.setAttribute('data-stale', 'true');
    }
    setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
}
