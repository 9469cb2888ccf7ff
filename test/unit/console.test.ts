import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConsoleCredentials } from '../../src/console/credentials.js';
import { escapeHtml } from '../../src/console/html.js';
import { LiveReadings } from '../../src/console/live.js';
import { oncePer } from '../../src/console/once-per.js';
import { loginPage, shellPage } from '../../src/console/pages.js';
import { SessionStore } from '../../src/console/sessions.js';
import { sharedSpendReads } from '../../src/console/shared-spend.js';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';

const assets = { url: (name: string) => `/console/assets/h/${name}` };

describe('console parts', () => {
  test('oncePer: one reading per interval whatever the number of callers; a failed one is not kept', async () => {
    let clock = 0;
    let reads = 0;
    let fail = false;
    const read = oncePer(1_000, () => (++reads, fail ? Promise.reject(new Error('store down')) : Promise.resolve(reads)), () => clock);
    assert.deepEqual(await Promise.all([read(), read(), read()]), [1, 1, 1]);
    clock = 999;
    assert.equal(await read(), 1);
    clock = 1_000;
    fail = true;
    await assert.rejects(read());
    fail = false;
    assert.equal(await read(), 3, 'the failure was not kept');
    assert.equal(reads, 3);
  });

  test('credentials: the admin key, the viewer key, nothing else', () => {
    const credentials = new ConsoleCredentials('admin-secret', 'viewer-secret');
    assert.equal(credentials.roleOf('admin-secret'), 'admin');
    assert.equal(credentials.roleOf('viewer-secret'), 'viewer');
    assert.equal(credentials.roleOf('admin-secret '), undefined);
    assert.equal(credentials.roleOf(''), undefined);
    assert.equal(new ConsoleCredentials('admin-secret', undefined).roleOf('viewer-secret'), undefined);
  });

  test('sessions: bounded (oldest out), expire, closed ones are gone; ids and CSRF tokens are unguessable and distinct', () => {
    let now = 0;
    const store = new SessionStore({ ttlMs: 1_000, max: 2, now: () => now });
    const a = store.open('admin');
    const b = store.open('viewer');
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.session.csrf, b.session.csrf);
    assert.ok(a.id.length >= 43);
    const c = store.open('admin');
    assert.equal(store.size, 2);
    assert.equal(store.get(a.id), undefined, 'the oldest session is logged out past the bound');
    assert.equal(store.get(b.id)?.role, 'viewer');
    store.close(b.id);
    assert.equal(store.get(b.id), undefined);
    now = 1_000;
    assert.equal(store.get(c.id), undefined, 'expired at its ttl');
    assert.equal(store.get(undefined), undefined);
  });

  test('pages: every value written into HTML is escaped', () => {
    assert.equal(escapeHtml(`<img src=x onerror="alert('x')">&`), '&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;');
    const shell = shellPage('overview', 'admin', '"><script>alert(1)</script>', assets);
    assert.doesNotMatch(shell, /<script>alert/);
    assert.match(shell, /data-csrf="&quot;&gt;&lt;script&gt;/);
    assert.doesNotMatch(shell, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(shell, /\sstyle=/, 'no inline style');
    assert.doesNotMatch(loginPage('<b>bad</b>', assets), /<b>bad<\/b>/);
  });

  test('live readings: /metrics values; p50/p95 as histogram_quantile computes them; one reading per interval whatever the number of pages', async () => {
    const registry = new Registry();
    const requests = new Counter({ name: 'http_requests_total', help: 'h', labelNames: ['status'], registers: [registry] });
    const coalesced = new Counter({ name: 'coalesced_requests_total', help: 'h', registers: [registry] });
    const ttft = new Histogram({ name: 'claude_api_ttft_seconds', help: 'h', buckets: [0.1, 0.2, 0.4], registers: [registry] });
    requests.inc({ status: '200' }, 9);
    requests.inc({ status: '502' }, 1);
    coalesced.inc(3);
    for (const v of [0.05, 0.15, 0.15, 0.3]) ttft.observe(v);
    let now = 0;
    let breakerReads = 0;
    const live = new LiveReadings({ metrics: () => registry.getMetricsAsJSON(), breakers: () => (breakerReads++, []), headroom: () => [] }, 1_000, () => now);
    const first = await live.read();
    assert.equal(first.overview.requests, 10);
    assert.equal(first.overview.serverErrors, 1);
    assert.equal(first.overview.coalesced, 3);
    // 4 observations: rank 2 falls in (0.1, 0.2] holding 2 (cumulative 1 → 3): 0.1 + 0.1 × (2 - 1) / 2 = 0.15.
    assert.ok(Math.abs((first.overview.ttftSeconds.p50 ?? 0) - 0.15) < 1e-9);
    // rank 3.8 falls in (0.2, 0.4] holding 1 (cumulative 3 → 4): 0.2 + 0.2 × 0.8 = 0.36.
    assert.ok(Math.abs((first.overview.ttftSeconds.p95 ?? 0) - 0.36) < 1e-9);
    assert.equal(first.overview.overheadSeconds.p50, undefined, 'no observations: no quantile');
    coalesced.inc();
    now = 999;
    assert.equal((await live.read()).overview.coalesced, 3, 'within the interval: the same reading');
    assert.equal(breakerReads, 1);
    now = 1_000;
    assert.equal((await live.read()).overview.coalesced, 4);
    assert.equal(breakerReads, 2);
  });

  test("live readings: a breaker is shown at least as open as the reading's circuit_breaker_state (WORKERS > 1: another worker's), and one only another worker made is listed", async () => {
    const registry = new Registry();
    const state = new Gauge({ name: 'circuit_breaker_state', help: 'h', labelNames: ['breaker'], registers: [registry] });
    state.set({ breaker: 'a/sonnet' }, 2);
    state.set({ breaker: 'b/sonnet' }, 1);
    state.set({ breaker: 'c/sonnet' }, 0);
    const own = [
      { breaker: 'a/sonnet', state: 'closed' as const, probeInSeconds: undefined },
      { breaker: 'c/sonnet', state: 'open' as const, probeInSeconds: 5 },
    ];
    const live = new LiveReadings({ metrics: () => registry.getMetricsAsJSON(), breakers: () => own, headroom: () => [] });
    assert.deepEqual((await live.read()).upstreams.breakers, [
      { breaker: 'a/sonnet', state: 'open', probeInSeconds: undefined },
      { breaker: 'c/sonnet', state: 'open', probeInSeconds: 5 },
      { breaker: 'b/sonnet', state: 'halfOpen', probeInSeconds: undefined },
    ]);
  });

  test('spend queries: one ledger query per interval for every open page together; other reads and changes go straight through', async () => {
    const asked: string[] = [];
    const dispatch = (req: IncomingMessage, pathname: string, search: URLSearchParams) => {
      asked.push(`${req.method ?? ''} ${pathname}?${search.toString()}`);
      return Promise.resolve({ status: 200, body: { n: asked.length } });
    };
    const shared = sharedSpendReads(dispatch, 60_000);
    const request = (method: string): IncomingMessage => Object.assign(new IncomingMessage(new Socket()), { method });
    const get = request('GET');
    const byTeam = new URLSearchParams('groupBy=team&from=1');
    const pages = await Promise.all([shared(get, '/admin/spend', byTeam), shared(get, '/admin/spend', new URLSearchParams('groupBy=team&from=1')), shared(get, '/admin/spend', byTeam)]);
    assert.deepEqual(pages.map((p) => (p as { body: { n: number } }).body.n), [1, 1, 1], 'three pages, one query');
    await shared(get, '/admin/spend', new URLSearchParams('groupBy=model&from=1'));
    await shared(get, '/admin/keys', new URLSearchParams());
    await shared(get, '/admin/keys', new URLSearchParams());
    await shared(request('POST'), '/admin/spend', byTeam);
    assert.deepEqual(asked, ['GET /admin/spend?groupBy=team&from=1', 'GET /admin/spend?groupBy=model&from=1', 'GET /admin/keys?', 'GET /admin/keys?', 'POST /admin/spend?groupBy=team&from=1']);
  });
});
