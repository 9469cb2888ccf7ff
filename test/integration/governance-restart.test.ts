import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { costEstimator } from '../../src/governance/cost-estimate.js';
import { adminClient } from '../helpers/admin-api.js';
import { eventually } from '../helpers/deferred.js';
import { postgresForSuite } from '../helpers/postgres-server.js';
import { launchGateway, type TestGateway } from '../helpers/stack.js';
import { forSuite } from '../helpers/suite.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';

/**
 * Issue 26: "a restart keeps keys, budgets and spend". An instance spends part of a key's budget,
 * is shut down (its ledger writer flushes) and started again on the same store: the key works,
 * and the spend already recorded still counts. The budget is exactly the worst case of one large
 * call: before any spend it fits; after a small call it does not; so it is refused after the
 * restart only if the restarted instance counts the spend from before it.
 */

const ADMIN_KEY = 'admin-key-restart-0123456789abcdef-012345';
const MODEL = 'claude-sonnet-4-5';
const SMALL = JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'a small call' }] });
const LARGE = JSON.stringify({ model: MODEL, max_tokens: 4096, messages: [{ role: 'user', content: 'a large call' }] });

async function send(instance: TestGateway, secret: string, payload: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${instance.gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': secret }, body: payload });
  return { status: res.status, text: await res.text() };
}

describe('a restart keeps keys, budgets and spend', () => {
  const postgres = postgresForSuite();
  const mock = forSuite<MockUpstream>(() => createMockUpstream(), (m) => m.close(), 'the mock upstream');
  const stores: [string, () => Record<string, string>][] = [
    ['the embedded store (GOVERNANCE_DATA_DIR)', () => ({ GOVERNANCE_DATA_DIR: mkdtempSync(join(tmpdir(), 'cgw-governance-')) })],
    ['PostgreSQL (DATABASE_URL)', () => ({ DATABASE_URL: postgres.url })],
  ];

  for (const [store, storeEnv] of stores) {
    test(`${store}: the key, its budget and the spend recorded before the restart hold after it`, async () => {
      const where = storeEnv();
      const env = { UPSTREAM_URL: mock.url, ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789', ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_POLL_MS: '100', COALESCE: 'off', ...where };
      let instance = await launchGateway(env);
      try {
        const worstLarge = costEstimator(instance.config.pricing, new Map()).worstCase('messages', MODEL, Buffer.from(LARGE)).microUsd;
        const admin = adminClient((instance.gateway.admin as { url: string }).url, ADMIN_KEY);
        const team = await admin.createTeam(`restart-${store.length}`);
        const issued = await admin.createKey(team.id, { name: 'restarted', budgets: [{ period: 'day', usd: worstLarge / 1_000_000 }] });
        // The large call alone fits the budget exactly; once anything is spent, it no longer does.
        await eventually(async () => (await send(instance, issued.secret, '{not json')).status === 400, 5_000, 'the key known');
        const small = await send(instance, issued.secret, SMALL);
        assert.equal(small.status, 200, small.text);
        const before = await send(instance, issued.secret, LARGE);
        assert.equal(before.status, 403, 'refused before the restart');

        await instance.gateway.shutdown();
        instance = await launchGateway(env);
        // Nothing spent after the restart before the large call: only the spend from before can refuse it.
        assert.equal((await send(instance, issued.secret, '{not json')).status, 400, 'the key known from the first load, before any poll');
        const after = await send(instance, issued.secret, LARGE);
        assert.equal(after.status, 403, `the spend before the restart still counts: ${after.text}`);
        assert.match((JSON.parse(after.text) as { error: { message: string } }).error.message, /daily budget of key "restarted"/);
        const again = await send(instance, issued.secret, SMALL.replace('a small call', 'after the restart'));
        assert.equal(again.status, 200, `the key and what remains of its budget survive the restart: ${again.text}`);
        const spend = await adminClient((instance.gateway.admin as { url: string }).url, ADMIN_KEY).call('GET', `/admin/spend?groupBy=key&key=${issued.key.id}`);
        assert.equal(spend.status, 200, spend.text);
        assert.ok(spend.text.includes(issued.key.id), spend.text);
      } finally {
        await instance.gateway.shutdown();
        if (where.GOVERNANCE_DATA_DIR !== undefined) rmSync(where.GOVERNANCE_DATA_DIR, { recursive: true, force: true });
      }
    });
  }
});
