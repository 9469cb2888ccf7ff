import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import Anthropic from '@anthropic-ai/sdk';
import type { BrowserContext, Page } from 'playwright-core';
import { stackForSuite } from '../helpers/stack.js';
import { deferred, eventually, until, type Deferred } from '../helpers/deferred.js';
import { scrape, sum } from '../helpers/prom.js';
import { artifactsDir, browserForSuite } from '../helpers/browser.js';
import { ADMIN_KEY, VIEWER_KEY, GATEWAY_KEY, consoleEnv } from '../helpers/console.js';

/**
 * The web console (issue 27) in Debian's headless Chromium: login, the live pages' numbers against
 * /metrics after scripted traffic, a breaker opening on the Upstreams page, accessibility (axe-core),
 * and the attacks: no session, no CSRF token, the viewer changing things.
 */
let gate: Deferred<void> = deferred();
gate.resolve();
const stack = stackForSuite({
  env: { ...consoleEnv(), BREAKER_VOLUME_THRESHOLD: '2', BREAKER_ERROR_THRESHOLD: '50', BREAKER_RESET_TIMEOUT_MS: '600000', UPSTREAM_RETRIES: '0', COALESCE_LINGER_MS: '0', GOVERNANCE_POLL_MS: '200' },
  mock: { onRequest: () => gate.promise },
});
/** The console on the gateway's admin listener. */
const consoleServer = {
  get url(): string {
    const admin = stack.gateway.admin;
    if (admin === undefined) throw new Error('the gateway has no admin listener');
    return admin.url;
  },
};
const client = (): ReturnType<typeof stack.client> => stack.client({ defaultHeaders: { 'x-gateway-api-key': GATEWAY_KEY } });
const browser = browserForSuite();
const shots = artifactsDir('console');
const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

async function logIn(context: BrowserContext, key = ADMIN_KEY): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${consoleServer.url}/console/`);
  assert.match(page.url(), /\/console\/login$/, 'a page without a session redirects to the login');
  await page.fill('#key', key);
  await Promise.all([page.waitForURL(`${consoleServer.url}/console/`), page.click('button[type=submit]')]);
  return page;
}

/** axe-core in the page (a context that bypasses the CSP only to inject it): no serious or critical violation. */
async function assertAccessible(context: BrowserContext, path: string): Promise<void> {
  const page = await context.newPage();
  await page.goto(`${consoleServer.url}${path}`);
  await page.waitForSelector('body[data-reading-at]', { timeout: 10_000 });
  await page.addScriptTag({ path: axeSource });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } }).axe;
    const result = await axe.run();
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  });
  const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(grave, [], `accessibility violations on ${path}: ${JSON.stringify(grave)}`);
  await page.close();
}

async function tileText(page: Page, metric: string): Promise<string> {
  return (await page.textContent(`[data-metric="${metric}"]`)) ?? '';
}

describe('web console in Chromium', () => {
  test('log in, then the overview shows the coalesced count and saved tokens /metrics shows after identical concurrent SDK calls', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'cgw_console');
      assert.ok(session !== undefined, 'a session cookie');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');

      // Four identical calls held at the mock until all four share one flight: one upstream call, three coalesced.
      gate = deferred();
      const sdk = client();
      const params = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'console coalescing' }] };
      const calls = Array.from({ length: 4 }, () => sdk.messages.create(params));
      await until(() => stack.gateway.flights.subscribers() === 4, 10_000, 'four clients on one flight');
      gate.resolve();
      await Promise.all(calls);

      const samples = await scrape(stack.gateway.url);
      const coalesced = sum(samples, 'coalesced_requests_total');
      const saved = sum(samples, 'claude_tokens_saved_total');
      const usdSaved = sum(samples, 'claude_cost_saved_usd_total');
      assert.equal(coalesced, 3);
      assert.ok(saved > 0, 'the followers saved tokens');
      assert.ok(usdSaved > 0, 'the saved tokens have a price');
      const expected = { coalesced: coalesced.toLocaleString('en-US'), saved: saved.toLocaleString('en-US') };
      // Runs in the page (its own DOM); fails loudly past its timeout.
      await page.waitForFunction(
        (want) => {
          const doc = (globalThis as unknown as { document: { querySelector(selector: string): { textContent: string | null } | null } }).document;
          const text = (metric: string): string | null | undefined => doc.querySelector(`[data-metric="${metric}"]`)?.textContent;
          return text('coalesced') === want.coalesced && text('tokens-saved') === want.saved;
        },
        expected,
        { timeout: 15_000 },
      );
      assert.equal(await tileText(page, 'coalesced'), expected.coalesced);
      assert.equal(await tileText(page, 'tokens-saved'), expected.saved);
      const shown = await page.getAttribute('[data-metric="usd-saved"]', 'data-value');
      assert.equal(Number(shown), usdSaved, 'dollars saved: the /metrics value itself');
      await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  test('a breaker opens on the Upstreams page when the mock fails', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      await page.click('nav >> text=Upstreams');
      await page.waitForURL(`${consoleServer.url}/console/upstreams`);
      const script = await fetch(`${stack.mock.url}/_mock/script`, { method: 'POST', body: '500:2' });
      assert.equal(script.status, 200);
      const sdk = client();
      for (let i = 0; i < 2; i++) {
        await assert.rejects(sdk.messages.create({ model: 'claude-failing-1', max_tokens: 8, messages: [{ role: 'user', content: `fail ${i}` }] }));
      }
      await until(() => stack.gateway.breakers.snapshot().some((b) => b.state === 'open'), 10_000, 'a breaker to open');
      const open = stack.gateway.breakers.snapshot().find((b) => b.state === 'open');
      assert.ok(open !== undefined);
      await page.waitForSelector('[data-testid="breakers"] [data-state="open"]', { timeout: 15_000 });
      const row = await page.textContent('[data-testid="breakers"] tbody');
      assert.ok(row?.includes(open.breaker), `the open breaker ${open.breaker} is listed: ${row ?? ''}`);
      await page.screenshot({ path: `${shots}/upstreams.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  test('every page has no serious or critical accessibility violation (axe-core); the login page too', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    try {
      const login = await context.newPage();
      await login.goto(`${consoleServer.url}/console/login`);
      await login.screenshot({ path: `${shots}/login.png` });
      await login.addScriptTag({ path: axeSource });
      const loginViolations = await login.evaluate(async () => {
        const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null }[] }> } }).axe;
        return (await axe.run()).violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
      });
      assert.deepEqual(loginViolations, []);
      await (await logIn(context)).close();
      for (const path of ['/console/', '/console/upstreams']) await assertAccessible(context, path);
    } finally {
      await context.close();
    }
  });

  test('the page runs under its Content-Security-Policy: no inline script or style, nothing from elsewhere', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
      });
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(`${consoleServer.url}/console/login`);
      await page.fill('#key', ADMIN_KEY);
      await Promise.all([page.waitForURL(`${consoleServer.url}/console/`), page.click('button[type=submit]')]);
      await page.waitForSelector('body[data-reading-at]', { timeout: 10_000 });
      assert.deepEqual(violations, []);
      assert.deepEqual(requests.filter((url) => !url.startsWith(consoleServer.url)), [], 'every request stays on the console origin');
    } finally {
      await context.close();
    }
  });
});

describe('web console over plain HTTP (attacks)', () => {
  async function session(key: string): Promise<{ cookie: string; csrf: string }> {
    const login = await fetch(`${consoleServer.url}/console/login`, { method: 'POST', body: new URLSearchParams({ key }), redirect: 'manual' });
    assert.equal(login.status, 303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';', 1)[0] ?? '';
    const page = await fetch(`${consoleServer.url}/console/`, { headers: { cookie } });
    const html = await page.text();
    const csrf = /data-csrf="([^"]+)"/.exec(html)?.[1] ?? '';
    assert.notEqual(csrf, '');
    return { cookie, csrf };
  }

  test('without a session: pages redirect to the login, readings are 401, a wrong key (a gateway key too) is 401 and sets no cookie', async () => {
    const root = await fetch(`${consoleServer.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 303);
    assert.equal(root.headers.get('location'), '/console/');
    const gatewayKey = await fetch(`${consoleServer.url}/console/login`, { method: 'POST', body: new URLSearchParams({ key: GATEWAY_KEY }), redirect: 'manual' });
    assert.equal(gatewayKey.status, 401, 'a gateway key is not a console credential');
    assert.equal(gatewayKey.headers.get('set-cookie'), null);
    const clientSide = await fetch(`${stack.gateway.url}/console/`, { redirect: 'manual' });
    assert.notEqual(clientSide.status, 200, 'the console is not served on the clients\' listener');
    for (const path of ['/console/', '/console/upstreams', '/console/flights', '/console/spend', '/console/keys']) {
      const res = await fetch(`${consoleServer.url}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get('location'), '/console/login');
    }
    const live = await fetch(`${consoleServer.url}/console/api/live`);
    assert.equal(live.status, 401);
    assert.equal(((await live.json()) as { error: { type: string } }).error.type, 'authentication_error');
    const wrong = await fetch(`${consoleServer.url}/console/login`, { method: 'POST', body: new URLSearchParams({ key: 'sk-ant-not-an-admin-key' }), redirect: 'manual' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const forged = await fetch(`${consoleServer.url}/console/api/live`, { headers: { cookie: 'cgw_console=forged-session-id' } });
    assert.equal(forged.status, 401);
    for (const path of ['/console/api/budgets', '/console/api/flights', '/console/api/admin/keys']) {
      const reading = await fetch(`${consoleServer.url}${path}`);
      assert.equal(reading.status, 401, path);
    }
    const change = await fetch(`${consoleServer.url}/console/api/admin/teams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'no-session' }) });
    assert.equal(change.status, 401, 'no session, no admin operation');
  });

  test('a change without the CSRF token (or with another session\'s) is refused; the viewer can look but not change', async () => {
    const admin = await session(ADMIN_KEY);
    const other = await session(ADMIN_KEY);
    const noToken = await fetch(`${consoleServer.url}/console/logout`, { method: 'POST', headers: { cookie: admin.cookie }, redirect: 'manual' });
    assert.equal(noToken.status, 403);
    const wrongToken = await fetch(`${consoleServer.url}/console/api/keys`, { method: 'POST', headers: { cookie: admin.cookie, 'x-csrf-token': other.csrf } });
    assert.equal(wrongToken.status, 403);
    const crossOrigin = await fetch(`${consoleServer.url}/console/api/keys`, { method: 'POST', headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, origin: 'http://evil.example' } });
    assert.equal(crossOrigin.status, 403);
    const viewer = await session(VIEWER_KEY);
    const look = await fetch(`${consoleServer.url}/console/api/live`, { headers: { cookie: viewer.cookie } });
    assert.equal(look.status, 200);
    const change = await fetch(`${consoleServer.url}/console/api/keys`, { method: 'POST', headers: { cookie: viewer.cookie, 'x-csrf-token': viewer.csrf } });
    assert.equal(change.status, 403);
    assert.match(((await change.json()) as { error: { message: string } }).error.message, /viewer/);
    // The session still works after the refused changes; logging out with the token ends it.
    const out = await fetch(`${consoleServer.url}/console/logout`, { method: 'POST', headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: admin.csrf }), redirect: 'manual' });
    assert.equal(out.status, 303);
    const after = await fetch(`${consoleServer.url}/console/api/live`, { headers: { cookie: admin.cookie } });
    assert.equal(after.status, 401);
  });

  test('pages carry a strict CSP; assets are compressed, cached by hash, and the scripts weigh at most 150 KB compressed', async () => {
    const login = await fetch(`${consoleServer.url}/console/login`);
    const csp = login.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(login.headers.get('x-frame-options'), 'DENY');
    const html = await login.text();
    const css = /href="(\/console\/assets\/[0-9a-f]{16}\/console\.css)"/.exec(html)?.[1];
    assert.ok(css !== undefined, 'the stylesheet is referenced under the build hash');
    const { session: admin } = { session: await session(ADMIN_KEY) };
    const shell = await (await fetch(`${consoleServer.url}/console/`, { headers: { cookie: admin.cookie } })).text();
    const scripts = [...shell.matchAll(/src="(\/console\/assets\/[0-9a-f]{16}\/[^"]+\.js)"/g)].map((m) => m[1] as string);
    assert.deepEqual(scripts.map((s) => s.split('/').pop()), ['main.js']);
    const base = (scripts[0] as string).replace(/main\.js$/, '');
    let compressed = 0;
    for (const name of ['main.js', 'dom.js', 'format.js', 'api.js', 'forms.js', 'keys.js', 'spend.js', 'flights.js', 'vendor/uplot.js']) {
      const res = await fetch(`${consoleServer.url}${base}${name}`, { headers: { 'accept-encoding': 'br' }, decompress: false } as RequestInit);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('content-encoding'), 'br', name);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', name);
      compressed += Number(res.headers.get('content-length'));
      await res.arrayBuffer();
    }
    assert.ok(compressed <= 150 * 1024, `scripts weigh ${compressed} bytes compressed`);
    const stale = await fetch(`${consoleServer.url}/console/assets/0000000000000000/main.js`);
    assert.equal(stale.status, 404, 'another build\'s hash serves nothing');
    const traversal = await fetch(`${consoleServer.url}${base}..%2F..%2Fconfig.js`);
    assert.equal(traversal.status, 404);
  });
});

/** What tests read of a page's DOM inside page.waitForFunction (the tests compile without the DOM library). */
interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
}

describe('console Keys, Spend and Live flights pages in Chromium', () => {
  const INJECTION = '<img src=x onerror=alert(1)>';
  const params = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'console keys' }] };
  const withKey = (secret: string, headers: Record<string, string> = {}): ReturnType<typeof stack.client> => stack.client({ defaultHeaders: { 'x-gateway-api-key': secret, ...headers } });
  const refused = async (secret: string): Promise<boolean> => {
    try {
      await withKey(secret).messages.create(params);
      return false;
    } catch (err) {
      return err instanceof Anthropic.AuthenticationError;
    }
  };
  let keyId = '';

  test('create a team and a key in the page (names are HTML): the SDK gets 200; the secret is gone after dismissal and reload; revoke: 401', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      const dialogs: string[] = [];
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.accept();
      });
      await page.click('nav >> text=Keys');
      await page.waitForURL(`${consoleServer.url}/console/keys`);
      await page.waitForSelector('[data-testid="create-team"]');
      await page.fill('#ct-name', INJECTION);
      await page.selectOption('#ct-period', 'day');
      await page.fill('#ct-usd', '100');
      await page.click('[data-testid="create-team"] button[type=submit]');
      await page.waitForFunction((name) => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="teams"] td')).some((td) => td.textContent === name), INJECTION, { timeout: 10_000 });

      await page.selectOption('#ck-team', { label: INJECTION });
      await page.fill('#ck-name', INJECTION);
      await page.fill('#ck-user', 'alice');
      await page.selectOption('#ck-period', 'day');
      await page.fill('#ck-usd', '5');
      await page.click('[data-testid="create-key"] button[type=submit]');
      await page.waitForSelector('[data-testid="secret"]', { timeout: 10_000 });
      const secret = (await page.textContent('[data-testid="secret"]')) ?? '';
      assert.match(secret, /^cgw_/);
      await page.waitForFunction((name) => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="keys"] td')).some((td) => td.textContent === name), INJECTION, { timeout: 10_000 });
      // The names are text: no element came of them.
      assert.equal(await page.locator('img').count(), 0, 'no <img> element: the names were shown as text');
      await page.screenshot({ path: `${shots}/keys.png`, fullPage: true });

      await eventually(async () => !(await refused(secret)), 10_000, 'the new key to be accepted');
      const answer = await withKey(secret, { 'x-gateway-mode': INJECTION }).messages.create(params);
      assert.equal(answer.type, 'message', 'the key made in the page works from the official SDK');

      await page.click('[data-testid="dismiss-secret"]');
      assert.equal((await page.content()).includes(secret), false, 'the secret is gone from the DOM once dismissed');
      await page.reload();
      await page.waitForSelector('[data-testid="keys"] tbody tr');
      assert.equal((await page.content()).includes(secret), false, 'the secret is not in the page after a reload');

      const listed = (await (await fetch(`${consoleServer.url}/console/api/admin/keys`, { headers: { cookie: await cookieOf(context) } })).json()) as { data: { id: string; name: string; prefix: string }[] };
      const made = listed.data.find((k) => k.name === INJECTION);
      assert.ok(made !== undefined);
      keyId = made.id;
      assert.ok(secret.startsWith(made.prefix));
      await page.locator('[data-testid="keys"] tr', { hasText: made.prefix }).locator('button[data-action="revoke"]').click();
      await eventually(() => refused(secret), 10_000, 'the key revoked in the page to be refused (401)');
      assert.equal(dialogs.length, 1, 'revoking asked for confirmation');
      await page.waitForFunction((prefix) => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="keys"] tr')).some((tr) => tr.textContent?.includes(prefix) === true && tr.querySelector('button[data-action="revoke"]') === null), made.prefix, { timeout: 10_000 });
    } finally {
      await context.close();
    }
  });

  test('the Spend page: the budget bar of the key equals the ledger; an HTML mode is shown as text', async () => {
    assert.notEqual(keyId, '', 'the previous test made a key');
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      await page.click('nav >> text=Spend');
      await page.waitForURL(`${consoleServer.url}/console/spend`);
      const cookie = await cookieOf(context);
      const csrf = (await page.getAttribute('body', 'data-csrf')) ?? '';
      const teams = (await (await fetch(`${consoleServer.url}/console/api/admin/teams`, { headers: { cookie } })).json()) as { data: { id: string; name: string }[] };
      const team = teams.data.find((t) => t.name === INJECTION);
      assert.ok(team !== undefined);
      const bar = `[data-testid="budget-bars"] li[data-scope="team"][data-id="${team.id}"]`;
      const teamSpend = async (): Promise<number> => {
        const answer = (await (await fetch(`${consoleServer.url}/admin/spend?groupBy=team&team=${team.id}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { data: { cost_usd: number }[] };
        return answer.data[0]?.cost_usd ?? 0;
      };
      await page.waitForSelector(bar);
      const before = await teamSpend();
      await page.waitForFunction((want) => Number((globalThis as unknown as { document: PageDocument }).document.querySelector(want.bar)?.getAttribute('data-spent')) === want.before, { bar, before }, { timeout: 15_000 });
      assert.equal(await page.getAttribute(bar, 'data-limit'), '100');
      // Traffic with a new key of the team (made through the console's admin dispatch): the bar moves to the ledger's new sum.
      const made = await fetch(`${consoleServer.url}/console/api/admin/keys`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ team_id: team.id, name: 'spender', budgets: [{ period: 'month', tokens: 1_000_000 }] }) });
      assert.equal(made.status, 201);
      const { secret, key } = (await made.json()) as { secret: string; key: { id: string } };
      await eventually(async () => !(await refused(secret)), 10_000, 'the new key to be accepted');
      await withKey(secret, { 'x-claude-code-session-id': 'console-session-1' }).messages.create(params);
      const keyRequests = async (): Promise<number> => {
        const answer = (await (await fetch(`${consoleServer.url}/admin/spend?groupBy=key&key=${key.id}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { data: { requests: number }[] };
        return answer.data[0]?.requests ?? 0;
      };
      await eventually(async () => (await keyRequests()) === 2, 10_000, 'the ledger to record both calls of the key');
      assert.ok((await teamSpend()) > before);
      const after = await teamSpend();
      await page.waitForFunction((want) => Number((globalThis as unknown as { document: PageDocument }).document.querySelector(want.bar)?.getAttribute('data-spent')) === want.after, { bar, after }, { timeout: 15_000 });
      const keyBar = `[data-testid="budget-bars"] li[data-scope="key"][data-id="${key.id}"]`;
      await page.waitForFunction((selector) => Number((globalThis as unknown as { document: PageDocument }).document.querySelector(selector)?.getAttribute('data-spent')) > 0, keyBar, { timeout: 15_000 });
      assert.equal(await page.getAttribute(keyBar, 'data-limit'), '1000000', 'a tokens budget: the bar counts tokens');
      await page.waitForFunction(() => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="spend-mode"] td')).some((td) => td.textContent === 'invalid'), undefined, { timeout: 10_000 });
      await page.waitForFunction((name) => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="spend-team"] td')).some((td) => td.textContent === name), INJECTION, { timeout: 10_000 });
      await page.waitForFunction(() => Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('[data-testid="spend-session"] td')).some((td) => td.textContent === 'console-session-1'), undefined, { timeout: 10_000 });
      assert.equal(await page.locator('img').count(), 0);
      await page.screenshot({ path: `${shots}/spend.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  test('the Live flights page lists a held call with its model, subscribers and tenant id, as FlightGroup.describe says', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      await page.click('nav >> text=Live flights');
      await page.waitForURL(`${consoleServer.url}/console/flights`);
      gate = deferred();
      const sdk = client();
      const calls = Array.from({ length: 2 }, () => sdk.messages.create({ ...params, messages: [{ role: 'user' as const, content: 'console flights' }] }));
      await until(() => stack.gateway.flights.subscribers() === 2, 10_000, 'two clients on one flight');
      const [flight] = stack.gateway.flights.describe();
      assert.ok(flight !== undefined && flight.tenant !== undefined);
      await page.waitForFunction(() => (globalThis as unknown as { document: PageDocument }).document.querySelector('[data-metric="flights"]')?.textContent === '1', undefined, { timeout: 10_000 });
      const row = (await page.textContent('[data-testid="flights"] tbody tr')) ?? '';
      assert.ok(row.includes('claude-sonnet-4-5') && row.includes(flight.tenant), row);
      const cells = await page.locator('[data-testid="flights"] tbody tr td').allTextContents();
      assert.equal(cells[2], '2', 'subscribers');
      await page.screenshot({ path: `${shots}/flights.png`, fullPage: true });
      gate.resolve();
      await Promise.all(calls);
      await page.waitForFunction(() => (globalThis as unknown as { document: PageDocument }).document.querySelector('[data-metric="flights"]')?.textContent === '0', undefined, { timeout: 10_000 });
    } finally {
      gate.resolve();
      await context.close();
    }
  });

  test('the viewer sees the Keys page without change controls; its forged change is 403, and an admin\'s without the CSRF token too', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context, VIEWER_KEY);
      await page.goto(`${consoleServer.url}/console/keys`);
      await page.waitForSelector('[data-testid="keys"] tbody tr');
      assert.equal(await page.locator('form.action').count(), 0, 'no forms');
      assert.equal(await page.locator('[data-action]').count(), 0, 'no rotate or revoke buttons');
      const csrf = (await page.getAttribute('body', 'data-csrf')) ?? '';
      const forged = await fetch(`${consoleServer.url}/console/api/admin/teams`, { method: 'POST', headers: { cookie: await cookieOf(context), 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'viewer-made' }) });
      assert.equal(forged.status, 403);
      const look = await fetch(`${consoleServer.url}/console/api/admin/teams`, { headers: { cookie: await cookieOf(context) } });
      assert.equal(look.status, 200, 'the viewer may read');
    } finally {
      await context.close();
    }
    const admin = await browser.newContext();
    try {
      const page = await logIn(admin);
      const cookie = await cookieOf(admin);
      const csrf = (await page.getAttribute('body', 'data-csrf')) ?? '';
      const body = JSON.stringify({ name: 'csrf-less' });
      const noToken = await fetch(`${consoleServer.url}/console/api/admin/teams`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body });
      assert.equal(noToken.status, 403, 'a change without the CSRF token is refused');
      const invalid = await fetch(`${consoleServer.url}/console/api/admin/teams`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', colour: 'red' }) });
      assert.equal(invalid.status, 400, 'the admin API\'s own validation (strict schemas)');
      const made = await fetch(`${consoleServer.url}/console/api/admin/teams`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body });
      assert.equal(made.status, 201);
      const teams = (await (await fetch(`${consoleServer.url}/console/api/admin/teams`, { headers: { cookie } })).json()) as { data: { name: string }[] };
      assert.deepEqual(teams.data.filter((t) => t.name === 'viewer-made' || t.name === 'csrf-less').map((t) => t.name), ['csrf-less'], 'only the admin\'s change with the token happened');
    } finally {
      await admin.close();
    }
  });

  test('rotate in the page: the new secret is shown once and works, the old one is refused', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context);
      await page.goto(`${consoleServer.url}/console/keys`);
      await page.waitForSelector('#ck-team option', { state: 'attached' });
      await page.fill('#ck-name', 'rotating');
      await page.click('[data-testid="create-key"] button[type=submit]');
      await page.waitForSelector('[data-testid="secret"]');
      const first = (await page.textContent('[data-testid="secret"]')) ?? '';
      await page.click('[data-testid="dismiss-secret"]');
      const prefix = (await (await fetch(`${consoleServer.url}/console/api/admin/keys`, { headers: { cookie: await cookieOf(context) } })).json() as { data: { name: string; prefix: string }[] }).data.find((k) => k.name === 'rotating')?.prefix ?? '';
      assert.ok(prefix !== '' && first.startsWith(prefix));
      await page.locator('[data-testid="keys"] tr', { hasText: prefix }).locator('button[data-action="rotate"]').click();
      await page.waitForSelector('[data-testid="secret"]');
      const second = (await page.textContent('[data-testid="secret"]')) ?? '';
      assert.notEqual(second, first);
      await eventually(async () => !(await refused(second)), 10_000, 'the rotated secret to be accepted');
      await eventually(() => refused(first), 10_000, 'the old secret to be refused');
      await page.click('[data-testid="dismiss-secret"]');
      assert.equal((await page.content()).includes(second), false);
    } finally {
      await context.close();
    }
  });

  test('the new pages have no serious or critical accessibility violation (axe-core)', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    try {
      await (await logIn(context)).close();
      for (const path of ['/console/keys', '/console/spend', '/console/flights']) await assertAccessible(context, path);
    } finally {
      await context.close();
    }
  });
});

async function cookieOf(context: BrowserContext): Promise<string> {
  const session = (await context.cookies()).find((c) => c.name === 'cgw_console');
  return session === undefined ? '' : `cgw_console=${session.value}`;
}
