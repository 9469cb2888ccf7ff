import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { GatewayError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { GatewayMetrics } from '../../../src/observability/metrics.js';
import { PriceTable } from '../../../src/core/pricing.js';
import { RedisDomain } from '../../../src/coordination/redis.js';
import { LocalBudgetCounters, type BudgetCounters } from '../../../src/governance/budget-counters.js';
import { RedisBudgetCounters } from '../../../src/governance/redis-budget-counters.js';
import { BudgetMetrics } from '../../../src/governance/budget-metrics.js';
import { Budgets, budgetHeaders, usdText, type SpendSource } from '../../../src/governance/budgets.js';
import type { Principal } from '../../../src/governance/model.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const CALL = { microUsd: 1_000, tokens: 100 };

function principal(over: Partial<Principal> = {}): Principal {
  return {
    keyId: 'key_1',
    keyName: 'alice-laptop',
    teamId: 'team_1',
    teamName: 'platform',
    userId: undefined,
    limits: {},
    keyBudgets: [{ period: 'day', microUsd: 10 * CALL.microUsd }],
    teamBudgets: [{ period: 'month', tokens: 1_000_000 }],
    expiresAt: undefined,
    ...over,
  };
}

class FakeSpend implements SpendSource {
  spent = new Map<string, { microUsd: number; tokens: number }>();
  calls = 0;
  fail = false;
  spendSince(scope: 'key' | 'team', id: string): Promise<{ microUsd: number; tokens: number }> {
    this.calls++;
    if (this.fail) return Promise.reject(new Error('database down'));
    return Promise.resolve(this.spent.get(`${scope}:${id}`) ?? { microUsd: 0, tokens: 0 });
  }
}

function budgets(counters: BudgetCounters, spend: SpendSource, extra: { failMode?: 'open' | 'closed'; now?: () => number; logs?: LogCapture; ttl?: number } = {}): Budgets {
  return new Budgets({
    counters,
    spend,
    failMode: extra.failMode ?? 'closed',
    metrics: new BudgetMetrics(new Registry()),
    logger: createLogger('info', extra.logs ?? new LogCapture()),
    now: extra.now ?? (() => NOW),
    reservationTtlMs: extra.ttl,
  });
}

async function outcomes(promises: Promise<unknown>[]): Promise<{ ok: number; refused: GatewayError[] }> {
  const settled = await Promise.allSettled(promises);
  const refused = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as GatewayError] : []));
  return { ok: settled.length - refused.length, refused };
}

function suiteFor(name: string, make: () => Promise<{ counters: () => BudgetCounters; close: () => Promise<void> }>): void {
  describe(name, () => {
    let env: { counters: () => BudgetCounters; close: () => Promise<void> };
    test('set up', async () => {
      env = await make();
    });

    test('50 concurrent reservations against a budget of 10 calls, from two admitters: exactly 10 admitted', async () => {
      const spend = new FakeSpend();
      const a = budgets(env.counters(), spend);
      const b = budgets(env.counters(), spend);
      const p = principal({ keyId: `conc-${name}` });
      const { ok, refused } = await outcomes(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).reserve(p, CALL)));
      assert.equal(ok, 10);
      assert.equal(refused.length, 40);
      for (const err of refused) assert.equal(err.code, 'BUDGET_EXCEEDED');
    });

    test('the refusal names the budget, its period and its reset; nothing is held by a refused call', async () => {
      const spend = new FakeSpend();
      const b = budgets(env.counters(), spend);
      const p = principal({ keyId: `refuse-${name}` });
      const err = await b.reserve(p, { microUsd: 11 * CALL.microUsd, tokens: 1 }).then(() => undefined, (e: unknown) => e as GatewayError);
      assert.ok(err instanceof GatewayError);
      assert.equal(err.status, 403);
      assert.equal(err.type, 'permission_error');
      assert.match(err.message, /daily budget of key "alice-laptop" is \$0\.01/);
      assert.match(err.message, /resets at 2026-12-08T00:00:00\.000Z/);
      // A refused call held nothing: the whole budget still fits.
      const r = await b.reserve(p, { microUsd: 10 * CALL.microUsd, tokens: 1 });
      assert.deepEqual(r.remaining?.microUsd, 10 * CALL.microUsd);
      r.end({ microUsd: 0, tokens: 0 });
    });

    test('a team budget in tokens refuses too, naming the team', async () => {
      const b = budgets(env.counters(), new FakeSpend());
      const p = principal({ keyId: `team-${name}`, teamId: `t-${name}`, keyBudgets: [], teamBudgets: [{ period: 'week', tokens: 150 }] });
      const first = await b.reserve(p, CALL);
      const err = await b.reserve(p, CALL).then(() => undefined, (e: unknown) => e as GatewayError);
      assert.match(err?.message ?? '', /weekly budget of team "platform" is 150 tokens .* resets at 2026-12-14T00:00:00\.000Z/);
      first.end(CALL);
    });

    test('settle replaces the worst case by the actual cost, exactly once', async () => {
      const b = budgets(env.counters(), new FakeSpend());
      const p = principal({ keyId: `settle-${name}` });
      const r = await b.reserve(p, { microUsd: 8 * CALL.microUsd, tokens: 1 });
      assert.equal(b.open, 1);
      r.end({ microUsd: CALL.microUsd, tokens: 1 });
      r.end({ microUsd: CALL.microUsd, tokens: 1 });
      assert.equal(b.open, 0);
      // 1 call spent: 9 more fit, the 10th does not (a second settle would have charged twice: 8 fit).
      const { ok } = await outcomes(Array.from({ length: 10 }, () => b.reserve(p, CALL)));
      assert.equal(ok, 9);
    });

    test('spend already in the ledger this period counts (a restart keeps it), loaded once per counter', async () => {
      const spend = new FakeSpend();
      const p = principal({ keyId: `base-${name}`, teamId: `tb-${name}` });
      spend.spent.set(`key:${p.keyId}`, { microUsd: 7 * CALL.microUsd, tokens: 0 });
      const b = budgets(env.counters(), spend);
      const { ok } = await outcomes(Array.from({ length: 5 }, () => b.reserve(p, CALL)));
      assert.equal(ok, 3);
      const calls = spend.calls;
      await b.reserve(p, CALL).catch(() => undefined);
      assert.equal(spend.calls, calls, 'a counter that exists is not loaded again');
    });

    test('a reservation never settled expires after its TTL instead of holding the budget forever', async () => {
      let now = NOW;
      const b = budgets(env.counters(), new FakeSpend(), { now: () => now, ttl: 60_000 });
      const p = principal({ keyId: `ttl-${name}` });
      await b.reserve(p, { microUsd: 10 * CALL.microUsd, tokens: 1 });
      await assert.rejects(b.reserve(p, CALL), /Budget exceeded/);
      now += 61_000;
      const r = await b.reserve(p, CALL);
      r.end(CALL);
    });

    test('headers: the least remaining in each unit and the reset of the tightest budget', async () => {
      const b = budgets(env.counters(), new FakeSpend());
      const p = principal({ keyId: `hdr-${name}`, teamId: `th-${name}` });
      const r = await b.reserve(p, CALL);
      r.end(CALL);
      const next = await b.reserve(p, CALL);
      assert.ok(next.remaining !== undefined);
      assert.deepEqual(budgetHeaders(next.remaining), [
        'x-gateway-budget-remaining-usd', '0.009000',
        'x-gateway-budget-remaining-tokens', String(1_000_000 - 100),
        'x-gateway-budget-reset', '2026-12-08T00:00:00.000Z',
      ]);
      next.end(ZERO);
    });

    test('close', async () => {
      await env.close();
    });
  });
}

const ZERO = { microUsd: 0, tokens: 0 };

suiteFor('in process', () => {
  const shared = new LocalBudgetCounters();
  return Promise.resolve({ counters: () => shared, close: () => Promise.resolve() });
});

suiteFor('redis', async () => {
  const redis: RedisServer = await startRedis();
  const domains: RedisDomain[] = [];
  const metrics = new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
  const open = (): RedisDomain => {
    const d = new RedisDomain({ name: 'budgets', url: redis.url, clusterNodes: undefined, tlsCa: undefined, commandTimeoutMs: 2_000, retryMs: 60_000 }, metrics, createLogger('info', new LogCapture()));
    d.start();
    domains.push(d);
    return d;
  };
  const a = open();
  const b = open();
  for (const d of [a, b]) {
    const deadline = Date.now() + 5_000;
    while (!d.available) {
      if (Date.now() > deadline) throw new Error('redis domain never became available');
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  let next = 0;
  return {
    // Each admitter on its own connection: two instances.
    counters: () => new RedisBudgetCounters(next++ % 2 === 0 ? a : b),
    close: async () => {
      for (const d of domains) await d.close();
      await redis.stop();
    },
  };
});

test('BUDGET_FAIL_MODE: closed refuses with 503 (retryable), open admits; one log line per outage', async () => {
  const broken: BudgetCounters = { reserve: () => Promise.reject(new Error('redis down')), settle: () => Promise.resolve() };
  const logs = new LogCapture();
  const closed = budgets(broken, new FakeSpend(), { logs });
  for (let i = 0; i < 3; i++) {
    const err = await closed.reserve(principal(), CALL).then(() => undefined, (e: unknown) => e as GatewayError);
    assert.ok(err !== undefined);
    assert.equal(err.code, 'BUDGET_UNAVAILABLE');
    assert.equal(err.status, 503);
  }
  assert.equal(logs.records().filter((r) => String(r.msg).startsWith('budgets cannot be checked')).length, 1);
  const open = budgets(broken, new FakeSpend(), { failMode: 'open' });
  const r = await open.reserve(principal(), CALL);
  assert.equal(r.remaining, undefined);
  // The spend source failing is the same outage.
  const spend = new FakeSpend();
  spend.fail = true;
  await assert.rejects(budgets(new LocalBudgetCounters(), spend).reserve(principal(), CALL), (e: unknown) => e instanceof GatewayError && e.code === 'BUDGET_UNAVAILABLE');
});

test('usdText: six decimals, exactly what toFixed(6) gives for micro-dollar amounts', () => {
  for (const micro of [0, 1, 999_999, 1_000_000, 1_234_567, 9_990_000, Math.floor(Number.MAX_SAFE_INTEGER / 4), -5, 0.5]) {
    assert.equal(usdText(micro), (micro / 1_000_000).toFixed(6), String(micro));
  }
});

test('budget metrics kept per call reach a scrape: team spend and the used ratio of team budgets', async () => {
  const registry = new Registry();
  const metrics = new BudgetMetrics(registry);
  const b = new Budgets({ counters: new LocalBudgetCounters(), spend: new FakeSpend(), failMode: 'closed', metrics, logger: createLogger('error', new LogCapture()), now: () => NOW });
  const p = principal({ keyId: 'metrics-key', teamId: 'metrics-team', teamName: 'metrics', teamBudgets: [{ period: 'month', microUsd: 4 * CALL.microUsd }] });
  (await b.reserve(p, CALL)).end(CALL);
  metrics.spent('metrics', 2_500_000);
  metrics.spent('metrics', 500_000);
  (await b.reserve(p, CALL)).end(CALL);
  const text = await registry.metrics();
  assert.match(text, /claude_gateway_team_spend_usd_total\{team="metrics"\} 3\n/);
  // At the second admission one call was spent of four: a quarter used.
  assert.match(text, /claude_gateway_budget_used_ratio\{team="metrics",period="month"\} 0\.25\n/);
  metrics.spent('metrics', 1_000_000);
  assert.match(await registry.metrics(), /claude_gateway_team_spend_usd_total\{team="metrics"\} 4\n/, 'added once, at the next scrape');
});
