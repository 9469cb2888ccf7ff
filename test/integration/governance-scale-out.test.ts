import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminClient } from '../helpers/admin-api.js';
import { eventually } from '../helpers/deferred.js';
import { postgresForSuite } from '../helpers/postgres-server.js';
import { launchGateway, type TestGateway } from '../helpers/stack.js';
import { forSuite } from '../helpers/suite.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';

/**
 * Two gateway instances on one PostgreSQL (DATABASE_URL), each polling key changes every
 * GOVERNANCE_POLL_MS (default 1000): a key created through A's admin API works on B, and once
 * revoked on A is refused on B, within the stated bound (5 s).
 */

const ADMIN_KEY = 'admin-key-scale-out-0123456789abcdef-0123';
const BOUND_MS = 5_000;
const params = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'scale-out' }] });

async function status(gateway: TestGateway, key: string): Promise<number> {
  const res = await fetch(`${gateway.gateway.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key },
    body: params,
  });
  await res.arrayBuffer();
  return res.status;
}

describe('two instances sharing PostgreSQL', () => {
  const postgres = postgresForSuite();
  const mock = forSuite<MockUpstream>(() => createMockUpstream(), (m) => m.close(), 'the mock upstream');
  const env = (): Record<string, string> => ({
    UPSTREAM_URL: mock.url,
    ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789',
    ADMIN_API_KEY: ADMIN_KEY,
    ADMIN_PORT: '0',
    DATABASE_URL: postgres.url,
    TENANT_HASH_KEY: 'tenant-hash-key-0123456789abcdef-0123456789',
  });
  const a = forSuite(() => launchGateway(env()), (g) => g.gateway.shutdown().then(() => undefined), 'instance A');
  const b = forSuite(() => launchGateway(env()), (g) => g.gateway.shutdown().then(() => undefined), 'instance B');

  test(`a key created on A works on B, and revoked on A is refused on B, each within ${BOUND_MS} ms`, async () => {
    const adminA = adminClient((a.gateway.admin as { url: string }).url, ADMIN_KEY);
    const team = await adminA.createTeam('shared');
    const issued = await adminA.createKey(team.id);
    assert.equal(await status(a, 'cgw_not-a-key-not-a-key-not-a-key-000000'), 401);
    await eventually(async () => (await status(b, issued.secret)) === 200, BOUND_MS, 'B to accept the key created on A');

    const revoked = await adminA.call('POST', `/admin/keys/${issued.key.id}/revoke`);
    assert.equal(revoked.status, 200);
    await eventually(async () => (await status(b, issued.secret)) === 401, BOUND_MS, 'B to refuse the key revoked on A');
    assert.equal(await status(a, issued.secret), 401, 'and A too');

    // A team's change reaches its keys on B too: B serves the team's new name in the principal it holds.
    const other = await adminA.createKey(team.id, { limits: { models: ['claude-haiku-*'] } });
    await eventually(async () => (await status(b, other.secret)) === 403, BOUND_MS, 'B to hold the limited key');
    await adminA.call('PATCH', `/admin/keys/${other.key.id}`, { limits: {} });
    await eventually(async () => (await status(b, other.secret)) === 200, BOUND_MS, "B to apply the key's new limits");
  });

  test('a restarted instance finds every key (the store is the database, not the process)', async () => {
    const adminA = adminClient((a.gateway.admin as { url: string }).url, ADMIN_KEY);
    const team = await adminA.createTeam('restart');
    const issued = await adminA.createKey(team.id);
    const c = await launchGateway(env());
    try {
      assert.equal(await status(c, issued.secret), 200, 'known from the first load, before any poll');
      const listed = await adminClient((c.gateway.admin as { url: string }).url, ADMIN_KEY).call('GET', '/admin/teams');
      assert.ok(listed.body.data.some((t) => t.id === team.id));
    } finally {
      await c.gateway.shutdown();
    }
  });

  test('the database down: every instance keeps the keys it knows and says so; back up, changes apply again', async () => {
    const adminA = adminClient((a.gateway.admin as { url: string }).url, ADMIN_KEY);
    const team = await adminA.createTeam('outage');
    const issued = await adminA.createKey(team.id);
    await eventually(async () => (await status(b, issued.secret)) === 200, BOUND_MS, 'B to accept the key');
    await postgres.stop();
    try {
      const failed = async (): Promise<boolean> => /^governance_key_poll_failures_total [1-9]/m.test(await (await fetch(`${b.gateway.url}/metrics`)).text());
      await eventually(failed, BOUND_MS, "B to count a failed poll");
      assert.equal(await status(b, issued.secret), 200, 'the last known keys stay in force');
      const refused = await adminA.call('POST', `/admin/keys/${issued.key.id}/revoke`);
      assert.equal(refused.status, 500, 'the admin API cannot change anything meanwhile');
      assert.equal(b.logs.records().filter((r) => r.msg === 'governance database poll failed: the last known keys stay in force until it answers').length, 1, 'logged once per outage');
    } finally {
      await postgres.start();
    }
    await adminA.call('POST', `/admin/keys/${issued.key.id}/revoke`);
    await eventually(async () => (await status(b, issued.secret)) === 401, BOUND_MS + 5_000, 'B to apply the revocation once the database answers');
  });
});
