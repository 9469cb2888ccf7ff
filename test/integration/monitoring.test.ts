import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deferred, until } from '../helpers/deferred.js';
import { createMockUpstream, type MockUpstream } from '../../src/mock-upstream/index.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';
import { freePort } from '../helpers/ports.js';

/**
 * monitoring/ checked with the real Prometheus: promtool validates the config and rules and runs
 * the alert unit tests; a real Prometheus scrapes a gateway that served a short mixed load, and
 * every PromQL expression of the Grafana dashboard must return data.
 */

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MONITORING = join(ROOT, 'monitoring');

function promtool(...args: string[]): string {
  return execFileSync('promtool', args, { cwd: MONITORING, encoding: 'utf8', stdio: 'pipe' });
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function dashboardExprs(): { title: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana/dashboards/claude-gateway.json'), 'utf8')) as { panels: Panel[] };
  const out: { title: string; expr: string }[] = [];
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr !== undefined && t.expr.trim() !== '') out.push({ title: p.title ?? '(untitled)', expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return out;
}

/**
 * Grafana's variables replaced the way Grafana would for a 1 s scrape interval and "all" selections,
 * and zero fallbacks removed: the underlying series themselves must exist.
 */
function concrete(expr: string): string {
  return expr
    .replace(/\s+or\s+(on\s*\(\s*\)\s*)?vector\(0\)/g, '')
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replace(/=~?\s*"\$\{?\w+\}?"/g, '=~".*"');
}

describe('monitoring/ with the real Prometheus', () => {
  test('promtool: config, rules and alert unit tests pass', () => {
    assert.match(promtool('check', 'config', 'prometheus.yml'), /SUCCESS/);
    assert.match(promtool('check', 'rules', 'alerts.yml'), /SUCCESS/);
    assert.match(promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
  });

  describe('a gateway under a short load, scraped by Prometheus', () => {
    let stack: UpstreamsStack;
    const mocks: MockUpstream[] = [];
    let prometheus: ChildProcess | undefined;
    let promUrl = '';
    let dir = '';

    before(async () => {
      const gate = deferred();
      let hold = false;
      // Two upstreams (UPSTREAMS), so the failover panels have moves to show: the primary serves,
      // the secondary takes what the primary fails (the 529 burst below) or its open breaker refuses.
      const primary = await createMockUpstream({ onRequest: () => (hold ? gate.promise : undefined) });
      mocks.push(primary);
      const secondary = await createMockUpstream();
      mocks.push(secondary);
      stack = await startUpstreamsGateway(
        [
          { name: 'primary', url: primary.url, tier: 0 },
          { name: 'secondary', url: secondary.url, tier: 1 },
        ],
        { CACHE: 'on', RATE_LIMIT_RPM: '40', BREAKER_VOLUME_THRESHOLD: '2', UPSTREAM_RETRIES: '0' },
      );
      const modes = ['chat', 'agent'];
      for (const mode of modes) {
        const client = stack.client({ defaultHeaders: { 'x-gateway-mode': mode } });
        await client.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: `hello ${mode}` }] });
        await client.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: `hello ${mode}` }] }); // cache hit
        await client.messages.stream({ model: 'claude-haiku-5-5', max_tokens: 16, messages: [{ role: 'user', content: `stream ${mode}` }] }).finalMessage();
        await client.messages.countTokens({ model: 'claude-sonnet-5', messages: [{ role: 'user', content: 'count' }] });
      }
      // Coalesced: three identical calls in flight together.
      hold = true;
      const client = stack.client({ defaultHeaders: { 'x-gateway-mode': 'chat', 'x-gateway-cache': 'off' } });
      const shared = Array.from({ length: 3 }, () => client.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'together' }] }));
      await until(() => stack.gateway.flights.subscribers() === 3, 5_000, 'three to share');
      hold = false;
      gate.resolve();
      await Promise.all(shared);
      // An upstream outage on one model opens its breaker; a burst trips the rate limit.
      const failing = stack.client({ defaultHeaders: { 'x-mock-status': '529' } });
      for (let i = 0; i < 3; i++) await failing.messages.create({ model: 'claude-opus-5', max_tokens: 8, messages: [{ role: 'user', content: `x${i}` }] }).catch(() => undefined);
      for (let i = 0; i < 45; i++) await fetch(`${stack.gateway.url}/v1/models`, { headers: { 'x-api-key': 'sk-ant-burst-0000000000', 'anthropic-version': '2023-06-01' } }).then((r) => r.arrayBuffer());

      dir = mkdtempSync(join(tmpdir(), 'cgw-prom-'));
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      writeFileSync(
        join(dir, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [${JSON.stringify(join(MONITORING, 'alerts.yml'))}]\nscrape_configs:\n  - job_name: claude-gateway\n    static_configs:\n      - targets: ['${new URL(stack.gateway.url).host}']\n`,
      );
      prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
      // Enough scrapes for rate() over 1m windows to have two samples, and traffic between them.
      let scrapes = 0;
      for (let i = 0; i < 200 && scrapes < 4; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('count_over_time(up{job="claude-gateway"}[1m])')}`).catch(() => undefined);
        // Prometheus answers 503 "Service Unavailable" (text) until its storage is ready: not yet, as for no answer.
        const body = res?.ok !== true ? undefined : ((await res.json()) as { data?: { result?: { value: [number, string] }[] } });
        scrapes = Number(body?.data?.result?.[0]?.value[1] ?? 0);
        if (scrapes === 2) {
          // Traffic between scrapes, so every rate() has an increase to show.
          await stack.client({ defaultHeaders: { 'x-gateway-mode': 'chat' } }).messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'between scrapes' }] });
          await stack.client({ defaultHeaders: { 'x-gateway-mode': 'agent' } }).messages.stream({ model: 'claude-haiku-5-5', max_tokens: 16, messages: [{ role: 'user', content: 'stream between' }] }).finalMessage();
        }
      }
      assert.ok(scrapes >= 4, 'Prometheus scraped the gateway');
    });

    after(async () => {
      prometheus?.kill('SIGTERM');
      await stack.close();
      await Promise.all(mocks.map((m) => m.close()));
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    });

    test('promtool check metrics accepts a real /metrics scrape', async () => {
      const text = await (await fetch(`${stack.gateway.url}/metrics`)).text();
      const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      // prom-client's own default gauges carry a _total suffix promtool lints; nothing else may be reported.
      const KNOWN = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
      const problems = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.trim() !== '' && !KNOWN.test(l));
      assert.deepEqual(problems, []);
      assert.ok(run.status === 0 || run.status === 3, `promtool exited ${String(run.status)}`);
    });

    test('every PromQL expression of the dashboard returns data', async () => {
      const exprs = dashboardExprs();
      assert.ok(exprs.length >= 12, `the dashboard has ${exprs.length} queries`);
      const empty: string[] = [];
      for (const { title, expr } of exprs) {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(concrete(expr))}`);
        const body = (await res.json()) as { status: string; error?: string; data?: { result?: unknown[] } };
        assert.equal(body.status, 'success', `${title}: ${expr}: ${body.error ?? ''}`);
        if ((body.data?.result?.length ?? 0) === 0) empty.push(`${title}: ${expr}`);
      }
      assert.deepEqual(empty, [], 'queries without data');
    });
  });
});
