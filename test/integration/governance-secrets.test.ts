import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { displayPrefix } from '../../src/governance/key-secret.js';
import { adminClient, postgresGovernedEnv } from '../helpers/admin-api.js';
import { eventually } from '../helpers/deferred.js';
import { postgresForSuite } from '../helpers/postgres-server.js';
import { launchGateway } from '../helpers/stack.js';
import { forSuite } from '../helpers/suite.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';

/**
 * Issue 26: "no key secret ever appears in logs, metrics, errors or the ledger". Keys are issued,
 * used (answered, refused by budget, by model, by rate limit, rotated away, revoked), and then every
 * text the gateway produced is searched for each secret and for any part of it longer than its
 * display prefix: the debug logs, /metrics, every answer (heads and bodies), the admin API's
 * listings and spend, and every row of every table of the real PostgreSQL store.
 */

const ADMIN_KEY = 'admin-key-secrets-0123456789abcdef-0123456';
const MODEL = 'claude-sonnet-4-5';
const body = (content: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content }], ...extra });

describe('key secrets stay out of everything the gateway writes', () => {
  const postgres = postgresForSuite();
  const mock = forSuite<MockUpstream>(() => createMockUpstream(), (m) => m.close(), 'the mock upstream');

  test('logs, /metrics, answers, admin listings and every table of the store: no secret, no part of one past its display prefix', async () => {
    const { gateway, logs } = await launchGateway({
      ...postgresGovernedEnv(mock.url, postgres.url, ADMIN_KEY),
      LOG_LEVEL: 'debug',
      COALESCE: 'off',
    });
    const texts: string[] = [];
    const secrets: string[] = [];
    let shutDown = false;
    try {
      const admin = adminClient((gateway.admin as { url: string }).url, ADMIN_KEY);
      const adminCall = async (method: string, path: string, payload?: unknown) => {
        const answer = await admin.call(method, path, payload);
        texts.push(answer.text);
        return answer;
      };
      const issue = async (name: string, extra: Record<string, unknown>): Promise<{ id: string; secret: string }> => {
        // The one answer that carries the secret (shown once): not searched.
        const created = await admin.call('POST', '/admin/keys', { team_id: team.id, name, ...extra });
        assert.equal(created.status, 201, created.text);
        secrets.push(created.body.secret);
        return { id: created.body.key.id, secret: created.body.secret };
      };
      const send = async (secret: string, payload: string, headers: Record<string, string> = {}, bearer = false): Promise<number> => {
        const credential: Record<string, string> = bearer ? { authorization: `Bearer ${secret}` } : { 'x-api-key': secret };
        const res = await fetch(`${gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...credential, ...headers }, body: payload });
        texts.push(JSON.stringify([...res.headers]), await res.text());
        return res.status;
      };

      const team = (await adminCall('POST', '/admin/teams', { name: 'secrets', budgets: [{ period: 'month', usd: 100 }] })).body;
      const poor = await issue('poor', { budgets: [{ period: 'day', usd: 0.000001 }] });
      const haikuOnly = await issue('haiku-only', { limits: { models: ['claude-haiku-*'] } });
      const slow = await issue('one-a-minute', { limits: { requests_per_minute: 1 } });
      const revoked = await issue('revoked', {});
      const rotated = await issue('rotated', {});
      const rich = await issue('rich', { user_id: 'alice', budgets: [{ period: 'day', usd: 10 }] });
      // The last key issued known: every earlier one is (the cache applies changes in order). A body that is not JSON: 400, nothing spent.
      await eventually(async () => (await send(rich.secret, '{not json')) === 400, 5_000, 'the keys to be known');

      assert.equal(await send(rich.secret, body('plain'), { 'x-claude-code-session-id': 'session-1' }), 200);
      assert.equal(await send(rich.secret, body('streamed', { stream: true })), 200);
      assert.equal(await send(rich.secret, body('bearer'), {}, true), 200);
      assert.equal(await send(poor.secret, body('over budget')), 403);
      assert.equal(await send(haikuOnly.secret, body('wrong model')), 403);
      assert.equal(await send(slow.secret, body('first')), 200);
      assert.equal(await send(slow.secret, body('second')), 429);
      assert.equal(await send('cgw_' + rich.secret.slice(4, 30) + 'x'.repeat(14), body('a near miss')), 401);

      assert.equal((await adminCall('POST', `/admin/keys/${revoked.id}/revoke`)).status, 200);
      const rotation = await admin.call('POST', `/admin/keys/${rotated.id}/rotate`);
      assert.equal(rotation.status, 200, rotation.text);
      secrets.push(rotation.body.secret);
      await eventually(async () => (await send(revoked.secret, body('revoked'))) === 401, 5_000, 'the revoked key refused');
      await eventually(async () => (await send(rotated.secret, body('rotated away'))) === 401, 5_000, 'the rotated secret refused');
      await eventually(async () => (await send(rotation.body.secret, body('rotated in'))) === 200, 5_000, 'the new secret accepted');

      for (const path of ['/admin/keys', `/admin/keys/${rich.id}`, `/admin/keys?team_id=${team.id}`, '/admin/spend?groupBy=key', '/admin/spend?groupBy=user', '/admin/teams']) {
        assert.equal((await adminCall('GET', path)).status, 200, path);
      }
      const metrics = await fetch(`${gateway.url}/metrics`);
      texts.push(await metrics.text());

      // Shut down: the ledger writer flushes; then every table of the store, whole.
      await gateway.shutdown();
      shutDown = true;
      texts.push(logs.text());
      const db = new pg.Client({ connectionString: postgres.url });
      await db.connect();
      try {
        const tables = (await db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r) => r.tablename);
        assert.ok(tables.includes('ledger') && tables.includes('keys'), tables.join());
        for (const table of tables) texts.push(JSON.stringify((await db.query(`SELECT * FROM "${table}"`)).rows));
        const ledgerRows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM ledger')).rows[0]?.n);
        assert.ok(ledgerRows >= 5, `${ledgerRows} ledger rows`);
      } finally {
        await db.end();
      }
    } finally {
      if (!shutDown) await gateway.shutdown();
    }

    assert.equal(secrets.length, 7);
    const everything = texts.join('\n');
    assert.ok(logs.lines.length > 20, 'the logs were captured');
    assert.ok(everything.includes(displayPrefix(secrets[secrets.length - 1] as string)), 'listings show display prefixes (what identifies a key)');
    for (const secret of secrets) {
      // Any piece longer than the display prefix: the prefix and one more character, or the random part alone.
      const shown = displayPrefix(secret);
      for (const piece of [secret, secret.slice(0, shown.length + 1), secret.slice(shown.length), secret.slice(4, shown.length + 4)]) {
        assert.ok(!everything.includes(piece), `a part of a key secret (${piece.length} characters) was written out`);
      }
    }
  });
});
