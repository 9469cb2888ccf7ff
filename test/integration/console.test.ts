import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { BrowserContext, Page } from 'playwright-core';
import { stackForSuite } from '../helpers/stack.js';
import { forSuite } from '../helpers/suite.js';
import { deferred, until, type Deferred } from '../helpers/deferred.js';
import { scrape, sum } from '../helpers/prom.js';
import { artifactsDir, browserForSuite } from '../helpers/browser.js';
import { ADMIN_KEY, VIEWER_KEY, startConsoleFor } from '../helpers/console.js';

/**
 * The web console (issue 27) in Debian's headless Chromium: login, the live pages' numbers against
 * /metrics after scripted traffic, a breaker opening on the Upstreams page, accessibility (axe-core),
 * and the attacks: no session, no CSRF token, the viewer changing things.
 */
let gate: Deferred<void> = deferred();
gate.resolve();
const stack = stackForSuite({
  env: { BREAKER_VOLUME_THRESHOLD: '2', BREAKER_ERROR_THRESHOLD: '50', BREAKER_RESET_TIMEOUT_MS: '600000', UPSTREAM_RETRIES: '0', COALESCE_LINGER_MS: '0' },
  mock: { onRequest: () => gate.promise },
});
const consoleServer = forSuite(() => startConsoleFor(stack.gateway), (c) => c.close(), 'the console');
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
      const client = stack.client();
      const params = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'console coalescing' }] };
      const calls = Array.from({ length: 4 }, () => client.messages.create(params));
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
      const client = stack.client();
      for (let i = 0; i < 2; i++) {
        await assert.rejects(client.messages.create({ model: 'claude-failing-1', max_tokens: 8, messages: [{ role: 'user', content: `fail ${i}` }] }));
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

  test('without a session: pages redirect to the login, readings are 401, a wrong key is 401 and sets no cookie', async () => {
    for (const path of ['/console/', '/console/upstreams']) {
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
    for (const name of ['main.js', 'dom.js', 'format.js', 'vendor/uplot.js']) {
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
