import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deferred, eventually, until, type Deferred } from '../helpers/deferred.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { scrape, sum } from '../helpers/prom.js';
import { SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';
import { freePort } from '../helpers/ports.js';
import { MemoryLedger, PRINCIPAL_HEADER, principalsByHeader, testPrincipal } from '../helpers/governance.js';

/**
 * monitoring/ checked with the real Prometheus: promtool validates the config and rules and runs
 * the alert unit tests; a real Prometheus scrapes two gateways (one instance on two upstreams, one
 * on Redis with a one-connection upstream pool) that served a short mixed load, and every PromQL
 * expression of the Grafana dashboard must return data.
 */

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MONITORING = join(ROOT, 'monitoring');

function promtool(...args: string[]): string {
  return execFileSync('promtool', args, { cwd: MONITORING, encoding: 'utf8', stdio: 'pipe' });
}

interface Panel {
  title?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
}

/** The expression of one target of the dashboard, by panel title and refId. */
function dashboardExpr(title: string, refId: string): string {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana/dashboards/claude-gateway.json'), 'utf8')) as { panels: Panel[] };
  const expr = dashboard.panels.find((p) => p.title === title)?.targets?.find((t) => t.refId === refId)?.expr;
  assert.ok(expr !== undefined, `the dashboard has a "${title}" panel with a target ${refId}`);
  return expr;
}

/**
 * The lines monitoring/README documents as what `promtool check metrics` prints for a live scrape:
 * the first ```text block under its "promtool check metrics" heading (an empty block: none).
 */
function documentedLintLines(): string[] {
  const readme = readFileSync(join(MONITORING, 'README.md'), 'utf8');
  const section = readme.split(/^### /m).find((s) => s.startsWith('`promtool check metrics`'));
  assert.ok(section !== undefined, 'monitoring/README has a "promtool check metrics" section');
  const block = /^```text\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(block !== null, 'the section lists the lines in a ```text block');
  return (block[1] ?? '').split('\n').filter((l) => l.trim() !== '');
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
    // The second instance: coordination on a real Redis, and one upstream connection, so a
    // second call waits for it (the pool panels have waits to show).
    let redis: RedisServer | undefined;
    let pooled: Stack | undefined;
    let poolHold: Deferred<void> | undefined;
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
      // Prompt caching: a session whose second call reads the cached system prompt and whose third
      // changes it (a cache break); the prompt-cache panels read these.
      const session = stack.client({ defaultHeaders: { 'x-gateway-mode': 'agent', 'x-claude-code-session-id': 'monitoring-session' } });
      const cachedSystem = (text: string): { type: 'text'; text: string; cache_control: { type: 'ephemeral' } }[] => [{ type: 'text', text: text.repeat(400), cache_control: { type: 'ephemeral' } }];
      await session.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, system: cachedSystem('You are a careful agent. '), messages: [{ role: 'user', content: 'first' }] });
      await session.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, system: cachedSystem('You are a careful agent. '), messages: [{ role: 'user', content: 'first' }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'second' }] });
      await session.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, system: cachedSystem('You are a different agent. '), messages: [{ role: 'user', content: 'third' }] });
      // An upstream outage on one model opens its breaker; a burst trips the rate limit.
      const failing = stack.client({ defaultHeaders: { 'x-mock-status': '529' } });
      for (let i = 0; i < 3; i++) await failing.messages.create({ model: 'claude-opus-5', max_tokens: 8, messages: [{ role: 'user', content: `x${i}` }] }).catch(() => undefined);
      for (let i = 0; i < 45; i++) await fetch(`${stack.gateway.url}/v1/models`, { headers: { 'x-api-key': 'sk-ant-burst-0000000000', 'anthropic-version': '2023-06-01' } }).then((r) => r.arrayBuffer());

      redis = await startRedis();
      // Governed keys (issue 26) on this instance, so the spend and refusal panels have data: one with a
      // budget, one whose budget fits no call.
      const ledger = new MemoryLedger();
      const principals = {
        alice: testPrincipal({ keyBudgets: [{ period: 'day', microUsd: 10_000_000 }] }),
        broke: testPrincipal({ keyId: 'key_broke', teamId: 'team_research', teamName: 'research', keyBudgets: [{ period: 'day', microUsd: 1 }] }),
      };
      pooled = await startStack({
        env: { REDIS_URL: redis.url, TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, UPSTREAM_CONNECTIONS: '1' },
        mock: { onRequest: (r) => (r.body.includes('hold the connection') ? poolHold?.promise : undefined) },
        gateway: { admission: { spend: ledger, ledger, principalOf: principalsByHeader(principals) } },
      });
      const replica = pooled;
      await eventually(async () => sum(await scrape(replica.gateway.url), 'redis_available') === 1, 10_000, 'the Redis-backed instance to use Redis');
      await eventually(async () => sum(await scrape(replica.gateway.url), 'redis_domain_available', { domain: 'budgets' }) === 1, 10_000, 'the budgets connection');
      const governedCalls = async (): Promise<void> => {
        await replica.client({ defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } }).messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'a governed call' }] });
        await replica.client({ defaultHeaders: { [PRINCIPAL_HEADER]: 'broke' } }).messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'over budget' }] }).catch(() => undefined);
      };
      /** One call holds the only upstream connection at the mock; a second one waits for it, then both end. */
      const poolWait = async (): Promise<void> => {
        const hold = deferred();
        poolHold = hold;
        const client = replica.client();
        const holding = client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'hold the connection' }] });
        await until(() => replica.mock.stats().activeRequests === 1, 5_000, 'the first call to hold the only connection');
        const waiting = client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'wait for the connection' }] });
        await until(() => replica.gateway.upstream.snapshot().queued === 1, 5_000, 'the second call to wait for the connection');
        hold.resolve();
        await Promise.all([holding, waiting]);
      };

      dir = mkdtempSync(join(tmpdir(), 'cgw-prom-'));
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      writeFileSync(
        join(dir, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [${JSON.stringify(join(MONITORING, 'alerts.yml'))}]\nscrape_configs:\n  - job_name: claude-gateway\n    static_configs:\n      - targets: ['${new URL(stack.gateway.url).host}', '${new URL(pooled.gateway.url).host}']\n`,
      );
      prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
      /** The fewest scrapes Prometheus stored for either instance (0 until both have been scraped, or while its storage starts). */
      const scrapeCount = async (): Promise<number> => {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('count_over_time(up{job="claude-gateway"}[1m])')}`).catch(() => undefined);
        // Prometheus answers 503 "Service Unavailable" (text) until its storage is ready: not yet, as for no answer.
        const body = res?.ok !== true ? undefined : ((await res.json()) as { data?: { result?: { value: [number, string] }[] } });
        const counts = (body?.data?.result ?? []).map((r) => Number(r.value[1]));
        return counts.length === 2 ? Math.min(...counts) : 0;
      };
      // Two scrapes of both instances before traffic, and two more once it ended (one may have been
      // taken before the traffic ended and stored after the count), so every rate() over 1m has an increase.
      let scrapes = 0;
      let needed = 2;
      let between = false;
      for (let i = 0; i < 200 && !(between && scrapes >= needed); i++) {
        await new Promise((r) => setTimeout(r, 250));
        scrapes = await scrapeCount();
        if (scrapes >= 2 && !between) {
          between = true;
          await stack.client({ defaultHeaders: { 'x-gateway-mode': 'chat' } }).messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'between scrapes' }] });
          await stack.client({ defaultHeaders: { 'x-gateway-mode': 'agent' } }).messages.stream({ model: 'claude-haiku-5-5', max_tokens: 16, messages: [{ role: 'user', content: 'stream between' }] }).finalMessage();
          await poolWait();
          await governedCalls();
          needed = (await scrapeCount()) + 2;
        }
      }
      assert.ok(between && scrapes >= needed, `Prometheus scraped both instances before and after the traffic (${scrapes} of ${needed})`);
    });

    after(async () => {
      prometheus?.kill('SIGTERM');
      poolHold?.resolve();
      await stack.close();
      await pooled?.close();
      await redis?.stop();
      await Promise.all(mocks.map((m) => m.close()));
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    });

    test('promtool check metrics on a live scrape prints exactly the lines monitoring/README documents', async () => {
      const documented = documentedLintLines();
      for (const gateway of [stack.gateway, pooled?.gateway]) {
        assert.ok(gateway !== undefined);
        const text = await (await fetch(`${gateway.url}/metrics`)).text();
        const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        const lines = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.trim() !== '');
        assert.deepEqual(lines.sort(), [...documented].sort(), `promtool check metrics on ${gateway.url}/metrics`);
        // promtool exits 3 for lint findings, 1 for a scrape it cannot parse.
        assert.equal(run.status, documented.length === 0 ? 0 : 3, `promtool exited ${String(run.status)}`);
      }
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

    /** The value of each series `expr` returns (Grafana's variables as in `concrete`), keyed by the label `by`. */
    async function values(expr: string, by: string): Promise<Record<string, number>> {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(concrete(expr))}`);
      const body = (await res.json()) as { status: string; data?: { result?: { metric: Record<string, string>; value: [number, string] }[] } };
      assert.equal(body.status, 'success', expr);
      return Object.fromEntries((body.data?.result ?? []).map((r) => [r.metric[by] ?? '', Number(r.value[1])]));
    }

    /** The one value a query without grouping labels returns (NaN if none). */
    async function value(expr: string): Promise<number> {
      return (await values(expr, '__none__'))[''] ?? Number.NaN;
    }

    test('the overhead, pool and Redis panels show what happened', async () => {
      const overheadP95 = await value(dashboardExpr('Gateway overhead p50 / p95 / p99', 'B'));
      assert.ok(overheadP95 > 0, `gateway overhead p95: ${overheadP95}`);
      const waited = await value(dashboardExpr('Upstream pool waits', 'A'));
      assert.ok(waited > 0, `a call waited for an upstream connection (waits/s: ${waited})`);
      const waitP95 = await value(dashboardExpr('Upstream pool waits', 'C'));
      assert.ok(waitP95 > 0, `pool wait p95: ${waitP95}`);
      const capacity = await value(dashboardExpr('Upstream pool occupancy', 'C'));
      assert.ok(capacity >= 1, `pool capacity: ${capacity}`);

      assert.ok(pooled !== undefined);
      assert.deepEqual(
        await values(dashboardExpr('Redis coordination', 'A'), 'instance'),
        { [new URL(stack.gateway.url).host]: 0, [new URL(pooled.gateway.url).host]: 1 },
        'redis_available: local only without REDIS_URL, 1 on Redis',
      );
      // `budgets`: the governed instance's connection for budget counters (issue 26).
      assert.deepEqual(await values(dashboardExpr('Redis coordination', 'B'), 'domain'), { flights: 1, reader: 1, 'rate-limit': 1, budgets: 1 });
      const errors = await values(dashboardExpr('Redis errors', 'A'), 'instance');
      assert.equal(Object.keys(errors).length, 2, 'a Redis error rate per instance');
    });
  });
});
