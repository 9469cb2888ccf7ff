import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import type { Gateway } from '../../src/server.js';
import { BUDGET_TEST_REDIS_DEADLINE_MS, fireWorkload, IDENTICAL, sum, tenWorstCases, TOTAL, heldMock } from '../helpers/budget-workload.js';
import { until } from '../helpers/deferred.js';
import { MemoryLedger, PRINCIPAL_HEADER, principalsByHeader, testPrincipal } from '../helpers/governance.js';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, metric, redisAvailable, SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';
import { startTestGateway, TEST_API_KEY } from '../helpers/stack.js';

/** The store faked (principals by a test header, an in-memory ledger); the same over PostgreSQL: governance-budget-postgres.test.ts. */
test('200 concurrent calls (plain, streamed, identical) on two instances sharing Redis against a budget of 10 worst cases: never more than 10 held at once, all settled, ledger = upstream usage', async () => {
  const { maxWorst, budget, minWorst } = tenWorstCases();
  assert.ok(budget < 11 * minWorst, 'the budget fits 10 calls of any kind, never 11');

  const { mock, arrived, release } = await heldMock();
  const redis = await startRedis();
  const ledger = new MemoryLedger();
  const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: budget }] });
  const admission = { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) };
  // Not a test of Redis deadlines: a loaded machine must not turn a slow relay read into a local fallback mid-stream.
  const env = { UPSTREAM_URL: mock.url, REDIS_URL: redis.url, TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, REDIS_COMMAND_TIMEOUT_MS: String(BUDGET_TEST_REDIS_DEADLINE_MS) };
  const gateways: Gateway[] = [];
  try {
    gateways.push(await startTestGateway(env, undefined, { admission }), await startTestGateway(env, undefined, { admission }));
    await redisAvailable(gateways);
    for (const gw of gateways) await eventually(async () => (await metric(gw.url, 'redis_domain_available', { domain: 'budgets' })) === 1, 10_000, 'the budgets connection');
    const [a, b] = gateways as [Gateway, Gateway];
    const open = (): number => (a.admission?.budgets.open ?? 0) + (b.admission?.budgets.open ?? 0);
    const clients = gateways.map((gw) => new Anthropic({ apiKey: TEST_API_KEY, baseURL: gw.url, maxRetries: 0, defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } }));

    const workload = fireWorkload(clients);
    const refused = workload.refused;
    // Held at the mock: 10 worst cases fill the budget, everything else is refused or follows a held call.
    await until(() => open() === 10, 30_000, 'the budget full of reservations');
    // At most 10 leaders are held, with at most 2 x IDENTICAL - 2 local followers: everything else was refused.
    await until(() => refused() >= TOTAL - 10 - 2 * IDENTICAL, 30_000, 'the calls that do not fit refused');
    assert.ok(arrived() <= 10, `${arrived()} calls reached upstream at once on a budget of 10`);
    assert.equal(open(), 10);
    release();
    const results = await workload.results;
    assert.equal(results.filter((r) => r === 'refused').length, refused());
    await until(() => open() === 0, 10_000, 'every reservation settled');
    await until(() => ledger.rows.length === results.filter((r) => r === 'answered').length, 10_000, 'a ledger row per answer');

    const upstreamRows = ledger.rows.filter((r) => r.source === 'upstream');
    const usage = mock.stats().usage;
    assert.equal(upstreamRows.length, mock.stats().byPath['POST /v1/messages']);
    assert.deepEqual(
      [sum(upstreamRows, (r) => r.inputTokens), sum(upstreamRows, (r) => r.outputTokens), sum(upstreamRows, (r) => r.cacheCreationInputTokens), sum(upstreamRows, (r) => r.cacheReadInputTokens)],
      [usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens],
    );
    // Every call that reached upstream held a reservation, and every reservation ended.
    assert.ok((a.admission?.budgets.settled ?? 0) + (b.admission?.budgets.settled ?? 0) >= upstreamRows.length);
    const billed = sum(upstreamRows, (r) => r.costMicroUsd);
    assert.ok(billed <= budget + maxWorst, `billed ${billed} µUSD on a budget of ${budget}`);
    for (const r of ledger.rows.filter((x) => x.source !== 'upstream')) assert.equal(r.costMicroUsd, 0);
  } finally {
    release();
    for (const gw of gateways) await gw.shutdown();
    await redis.stop();
    await mock.close();
  }
});
