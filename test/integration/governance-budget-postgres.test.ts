import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import pg from 'pg';
import { adminClient, postgresGovernedEnv } from '../helpers/admin-api.js';
import { BUDGET_MODEL, fireWorkload, IDENTICAL, tenWorstCases, TOTAL, BUDGET_TEST_REDIS_DEADLINE_MS, heldMock } from '../helpers/budget-workload.js';
import { until } from '../helpers/deferred.js';
import { postgresForSuite } from '../helpers/postgres-server.js';
import { redisForSuite } from '../helpers/redis-server.js';
import { eventually, metric, redisAvailable, SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';
import { launchGateway, type TestGateway } from '../helpers/stack.js';

/**
 * Issue 26's "done when", over the real parts: two instances sharing a real PostgreSQL
 * (DATABASE_URL: keys, teams, the ledger) and a real Redis (budget reservations, one Lua script),
 * the key and its budget created through the admin API, 200 calls at once.
 */

const ADMIN_KEY = 'admin-key-budget-postgres-0123456789abcdef';

/** A known key gets past authentication to the body check (400); an unknown one stops at 401. Nothing is reserved either way. */
async function keyKnown(gw: TestGateway, secret: string): Promise<boolean> {
  const res = await fetch(`${gw.gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': secret }, body: '{not json' });
  await res.arrayBuffer();
  return res.status === 400;
}

describe('budgets on two instances sharing PostgreSQL and Redis', () => {
  const postgres = postgresForSuite();
  const redis = redisForSuite();

  test('200 concurrent calls (plain, streamed, identical) against a database key whose budget fits 10 worst cases: billed within one worst case of it, every reservation settled, the ledger in PostgreSQL = the upstream usage', async () => {
    const { mock, arrived, release } = await heldMock();
    const env = {
      ...postgresGovernedEnv(mock.url, postgres.url, ADMIN_KEY),
      REDIS_URL: redis.url,
      // Not a test of Redis deadlines: a loaded machine must not turn a slow relay read into a local fallback mid-stream.
      REDIS_COMMAND_TIMEOUT_MS: String(BUDGET_TEST_REDIS_DEADLINE_MS),
      TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY,
    };
    const instances: TestGateway[] = [];
    const db = new pg.Client({ connectionString: postgres.url });
    try {
      instances.push(await launchGateway(env), await launchGateway(env));
      const [a, b] = instances as [TestGateway, TestGateway];
      const gateways = [a.gateway, b.gateway];
      await redisAvailable(gateways);
      for (const gw of gateways) await eventually(async () => (await metric(gw.url, 'redis_domain_available', { domain: 'budgets' })) === 1, 10_000, 'the budgets connection');

      const { maxWorst, budget, minWorst } = tenWorstCases(a.config.pricing);
      assert.ok(budget < 11 * minWorst, 'the budget fits 10 calls of any kind, never 11');
      const admin = adminClient((a.gateway.admin as { url: string }).url, ADMIN_KEY);
      const team = await admin.createTeam('concurrency');
      const created = await admin.call('POST', '/admin/keys', { team_id: team.id, name: 'ten-calls', budgets: [{ period: 'day', usd: budget / 1_000_000 }] });
      assert.equal(created.status, 201, created.text);
      const keyId = created.body.key.id;
      const secret = created.body.secret;
      for (const gw of instances) await eventually(() => keyKnown(gw, secret), 5_000, 'the new key on both instances');

      const open = (): number => (a.gateway.admission?.budgets.open ?? 0) + (b.gateway.admission?.budgets.open ?? 0);
      const workload = fireWorkload(gateways.map((gw) => new Anthropic({ apiKey: secret, baseURL: gw.url, maxRetries: 0 })));
      // Held at the mock: 10 worst cases fill the budget, everything else is refused or follows a held call.
      await until(() => open() === 10, 60_000, 'the budget full of reservations');
      await until(() => workload.refused() >= TOTAL - 10 - 2 * IDENTICAL, 60_000, 'the calls that do not fit refused');
      assert.ok(arrived() <= 10, `${arrived()} calls reached upstream at once on a budget of 10`);
      assert.equal(open(), 10);
      release();
      const results = await workload.results;
      const answered = results.filter((r) => r === 'answered').length;
      await until(() => open() === 0, 10_000, 'every reservation settled');
      assert.ok((a.gateway.admission?.budgets.settled ?? 0) + (b.gateway.admission?.budgets.settled ?? 0) >= (mock.stats().byPath['POST /v1/messages'] ?? 0));

      // Shut down: each ledger writer flushes what it holds; then the ledger is read from PostgreSQL itself.
      for (const gw of instances) await gw.gateway.shutdown();
      await db.connect();
      const rows = (await db.query<Record<string, string>>(
        `SELECT source, count(*) AS n, sum(input_tokens) AS input, sum(output_tokens) AS output,
                sum(cache_creation_input_tokens) AS cache_creation, sum(cache_read_input_tokens) AS cache_read, sum(cost_micro_usd) AS cost
           FROM ledger WHERE key_id = $1 GROUP BY source`,
        [keyId],
      )).rows;
      const bySource = new Map(rows.map((r) => [r.source, r]));
      const upstream = bySource.get('upstream');
      assert.ok(upstream !== undefined, JSON.stringify(rows));
      assert.equal(sumOf(rows, 'n'), answered, 'a ledger row per answer');
      const usage = mock.stats().usage;
      assert.equal(Number(upstream.n), mock.stats().byPath['POST /v1/messages']);
      assert.deepEqual(
        [Number(upstream.input), Number(upstream.output), Number(upstream.cache_creation), Number(upstream.cache_read)],
        [usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens],
      );
      const billed = Number(upstream.cost);
      assert.ok(billed <= budget + maxWorst, `billed ${billed} µUSD on a budget of ${budget}`);
      for (const r of rows) if (r.source !== 'upstream') assert.equal(Number(r.cost), 0, `${r.source} rows cost nothing`);
      const models = (await db.query<{ model: string }>('SELECT DISTINCT model FROM ledger WHERE key_id = $1', [keyId])).rows.map((r) => r.model);
      assert.deepEqual(models, [BUDGET_MODEL]);
    } finally {
      release();
      for (const gw of instances) await gw.gateway.shutdown();
      await db.end().catch(() => undefined);
      await mock.close();
    }
  });
});

function sumOf(rows: readonly Record<string, string>[], column: string): number {
  return rows.reduce((n, r) => n + Number(r[column]), 0);
}
