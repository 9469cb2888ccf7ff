import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import type { LedgerRow } from '../../src/governance/model.js';
import { keyHash } from '../../src/governance/key-secret.js';
import { migrate, MIGRATIONS } from '../../src/governance/migrations.js';
import { openPglite, openPostgres, type SqlClient } from '../../src/governance/sql.js';
import { GovernanceStoreError, SqlGovernanceStore, type GovernanceStore } from '../../src/governance/store.js';
import { postgresForSuite } from '../helpers/postgres-server.js';

/** The same contract, run against PGlite (in memory) and a real PostgreSQL. */

const row = (over: Partial<LedgerRow>): LedgerRow => ({
  at: Date.UTC(2026, 11, 7, 10),
  requestId: 'req_1',
  keyId: undefined,
  teamId: undefined,
  userId: undefined,
  mode: 'default',
  model: 'claude-sonnet-4-5',
  upstream: 'anthropic',
  status: 200,
  source: 'upstream',
  inputTokens: 10,
  outputTokens: 20,
  cacheCreationInputTokens: 1,
  cacheReadInputTokens: 2,
  costMicroUsd: 1_000,
  savedMicroUsd: 0,
  latencyMs: 12,
  claudeCodeSession: undefined,
  ...over,
});

function contract(open: () => Promise<SqlClient>): void {
  let n = 0;
  /** A fresh store on a fresh database each time (team names unique per test). */
  const unique = (name: string): string => `${name}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  let store: GovernanceStore;
  const withStore = (name: string, body: (s: GovernanceStore) => Promise<void>): void => {
    void test(name, async () => {
      store = await SqlGovernanceStore.open(await open());
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  };

  withStore('teams: create, list, get, update; names are unique and stored verbatim (SQL metacharacters included)', async (s) => {
    const hostile = unique(`x'); DROP TABLE teams; --"\\`);
    const team = await s.createTeam({ name: hostile, budgets: [{ period: 'day', microUsd: 5_000_000 }] });
    assert.equal(team.name, hostile);
    assert.deepEqual(team.budgets, [{ period: 'day', microUsd: 5_000_000 }]);
    assert.ok((await s.listTeams()).some((t) => t.id === team.id && t.name === hostile));
    await assert.rejects(s.createTeam({ name: hostile }), (err: unknown) => err instanceof GovernanceStoreError && err.problem === 'name_taken');
    const updated = await s.updateTeam(team.id, { budgets: [{ period: 'month', tokens: 1000 }] });
    assert.deepEqual(updated?.budgets, [{ period: 'month', tokens: 1000 }]);
    assert.equal(updated.name, hostile);
    assert.equal((await s.getTeam(team.id))?.budgets[0]?.period, 'month');
    assert.equal(await s.getTeam('team_none'), undefined);
    assert.equal(await s.updateTeam('team_none', { name: 'x' }), undefined);
  });

  withStore('keys: the secret is returned once, stored only as its hash; rotate, revoke, update; changes are seen in order', async (s) => {
    const team = await s.createTeam({ name: unique('eng') });
    const start = (await s.keysChangedSince(0)).cursor;
    const issued = await s.createKey({ teamId: team.id, name: 'ci', userId: 'alice', limits: { models: ['claude-*'] }, budgets: [{ period: 'day', microUsd: 1 }] });
    assert.match(issued.secret, /^cgw_[0-9A-Za-z]{40}$/);
    assert.equal(issued.key.prefix, issued.secret.slice(0, 10));
    assert.ok(!JSON.stringify(issued.key).includes(issued.secret), 'a key record never holds its secret');
    assert.ok(!JSON.stringify(await s.listKeys()).includes(issued.secret.slice(10)));

    let seen = await s.keysChangedSince(start);
    const created = seen.changes.find((c) => c.principal.keyId === issued.key.id);
    assert.equal(created?.hash, keyHash(issued.secret));
    assert.equal(created.revoked, false);
    assert.deepEqual(created.principal, {
      keyId: issued.key.id, keyName: 'ci', teamId: team.id, teamName: team.name, userId: 'alice',
      limits: { models: ['claude-*'] }, keyBudgets: [{ period: 'day', microUsd: 1 }], teamBudgets: [], expiresAt: undefined,
    });
    assert.equal((await s.keysChangedSince(seen.cursor)).changes.length, 0, 'nothing changed since');

    const rotated = await s.rotateKey(issued.key.id);
    assert.ok(rotated !== undefined && rotated.secret !== issued.secret);
    seen = await s.keysChangedSince(seen.cursor);
    assert.deepEqual(seen.changes.map((c) => [c.principal.keyId, c.hash]), [[issued.key.id, keyHash(rotated.secret)]]);

    await s.updateTeam(team.id, { budgets: [{ period: 'week', microUsd: 7 }] });
    seen = await s.keysChangedSince(seen.cursor);
    assert.deepEqual(seen.changes[0]?.principal.teamBudgets, [{ period: 'week', microUsd: 7 }], "a team's change reaches its keys");

    const patched = await s.updateKey(issued.key.id, { expiresAt: Date.UTC(2027, 0, 1), userId: null, metadata: { owner: 'ops' } });
    assert.equal(patched?.expiresAt, Date.UTC(2027, 0, 1));
    assert.equal(patched.userId, undefined);
    assert.deepEqual(patched.limits, { models: ['claude-*'] }, 'fields not named stay');
    assert.deepEqual(patched.metadata, { owner: 'ops' });

    const revoked = await s.revokeKey(issued.key.id);
    assert.ok(revoked?.revokedAt !== undefined);
    seen = await s.keysChangedSince(seen.cursor);
    assert.equal(seen.changes.at(-1)?.revoked, true);
    assert.equal((await s.revokeKey(issued.key.id))?.revokedAt, revoked.revokedAt, 'revoking twice keeps the first time');
    await assert.rejects(s.rotateKey(issued.key.id), (err: unknown) => err instanceof GovernanceStoreError && err.problem === 'key_revoked');
    assert.equal(await s.rotateKey('key_none'), undefined);
    assert.equal(await s.getKey('key_none'), undefined);
    await assert.rejects(s.createKey({ teamId: 'team_none' }), (err: unknown) => err instanceof GovernanceStoreError && err.problem === 'team_not_found');
  });

  withStore('keysChangedSince pages never split one change number (a team update touches all its keys at once)', async (s) => {
    const team = await s.createTeam({ name: unique('big') });
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await s.createKey({ teamId: team.id })).key.id);
    const before = (await s.keysChangedSince(0, 1_000_000)).cursor;
    await s.updateTeam(team.id, { budgets: [{ period: 'day', tokens: 5 }] });
    const page = await s.keysChangedSince(before, 2);
    assert.deepEqual(new Set(page.changes.map((c) => c.principal.keyId)), ids, 'the whole run, though larger than the page');
    assert.equal((await s.keysChangedSince(page.cursor, 2)).changes.length, 0);
  });

  withStore('ledger: rows in, spend per key and team since an instant (upstream calls only), grouped queries', async (s) => {
    const team = unique('team');
    const at = Date.UTC(2026, 11, 7, 10);
    await s.insertLedger([
      row({ requestId: 'a', keyId: 'k1', teamId: team, userId: 'u1', at }),
      row({ requestId: 'b', keyId: 'k1', teamId: team, userId: 'u1', at: at + 1, model: 'claude-haiku-4-5', costMicroUsd: 500 }),
      row({ requestId: 'c', keyId: 'k2', teamId: team, at: at + 86_400_000, claudeCodeSession: 'sess-1' }),
      row({ requestId: 'd', keyId: 'k1', teamId: team, at: at + 2, source: 'coalesced', costMicroUsd: 0, savedMicroUsd: 1_000 }),
      row({ requestId: 'e', keyId: 'k0', teamId: team, at: at - 1 }),
    ]);
    assert.deepEqual(await s.spendSince('key', 'k1', at), { microUsd: 1_500, tokens: 66 });
    assert.deepEqual(await s.spendSince('team', team, at), { microUsd: 2_500, tokens: 99 });
    assert.deepEqual(await s.spendSince('key', 'nobody', 0), { microUsd: 0, tokens: 0 });

    const byKey = await s.querySpend({ teamId: team, from: at }, 'key');
    assert.deepEqual(byKey.map((r) => [r.group, r.requests, r.costMicroUsd, r.savedMicroUsd]), [['k1', 3, 1_500, 1_000], ['k2', 1, 1_000, 0]]);
    const byDay = await s.querySpend({ teamId: team }, 'day');
    assert.deepEqual(byDay.map((r) => [r.group, r.requests]), [['2026-12-07', 4], ['2026-12-08', 1]]);
    const byUser = await s.querySpend({ teamId: team, to: at + 86_400_000 }, 'user');
    assert.deepEqual(byUser.map((r) => [r.group, r.requests]), [['u1', 2], [null, 2]]);
    const byModel = await s.querySpend({ teamId: team, model: 'claude-haiku-4-5' }, 'model');
    assert.deepEqual(byModel.map((r) => [r.group, r.outputTokens]), [['claude-haiku-4-5', 20]]);
    // Many rows in one call (more than one INSERT's worth).
    const many = Array.from({ length: 2_500 }, (_, i) => row({ requestId: `m${i}`, teamId: `${team}-many`, costMicroUsd: 1 }));
    await s.insertLedger(many);
    assert.deepEqual(await s.spendSince('team', `${team}-many`, 0), { microUsd: 2_500, tokens: 2_500 * 33 });
  });
}

describe('governance store on PGlite (in memory)', () => {
  contract(() => openPglite('memory:'));

  test('migrations: applied once, recorded, and a second run finds nothing to do', async () => {
    const db = await openPglite('memory:');
    try {
      assert.deepEqual(await migrate(db), MIGRATIONS.map((_, i) => i + 1));
      assert.deepEqual(await migrate(db), []);
      assert.equal(Number((await db.query('SELECT max(version) AS v FROM schema_migrations'))[0]?.v), MIGRATIONS.length);
    } finally {
      await db.close();
    }
  });

  test('a restart keeps teams, keys and ledger rows (PGlite on a directory)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgw-pglite-'));
    const first = await SqlGovernanceStore.open(await openPglite(dir));
    const team = await first.createTeam({ name: 'kept', budgets: [{ period: 'day', microUsd: 3 }] });
    const issued = await first.createKey({ teamId: team.id });
    await first.insertLedger([row({ keyId: issued.key.id, teamId: team.id })]);
    await first.close();
    const second = await SqlGovernanceStore.open(await openPglite(dir));
    try {
      assert.deepEqual((await second.getTeam(team.id))?.budgets, [{ period: 'day', microUsd: 3 }]);
      assert.equal((await second.keysChangedSince(0)).changes.find((c) => c.principal.keyId === issued.key.id)?.hash, keyHash(issued.secret));
      assert.deepEqual(await second.spendSince('key', issued.key.id, 0), { microUsd: 1_000, tokens: 33 });
    } finally {
      await second.close();
    }
  });
});

describe('governance store on PostgreSQL', () => {
  const postgres = postgresForSuite();
  contract(() => openPostgres(postgres.url));

  test('two instances migrating at once take turns (advisory lock): the schema is applied exactly once', async () => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE race');
    await admin.end();
    const url = postgres.url.replace(/\/postgres$/, '/race');
    const [a, b] = [await openPostgres(url), await openPostgres(url)];
    try {
      const applied = await Promise.all([migrate(a), migrate(b)]);
      assert.deepEqual(applied.flat().sort(), MIGRATIONS.map((_, i) => i + 1));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a restart keeps teams, keys and ledger rows (the PostgreSQL server restarted)', async () => {
    const first = await SqlGovernanceStore.open(await openPostgres(postgres.url));
    const team = await first.createTeam({ name: `kept-${Date.now()}` });
    const issued = await first.createKey({ teamId: team.id });
    await first.insertLedger([row({ keyId: issued.key.id, teamId: team.id })]);
    await first.close();
    await postgres.stop();
    await postgres.start();
    const second = await SqlGovernanceStore.open(await openPostgres(postgres.url));
    try {
      assert.equal((await second.getKey(issued.key.id))?.teamId, team.id);
      assert.deepEqual(await second.spendSince('key', issued.key.id, 0), { microUsd: 1_000, tokens: 33 });
    } finally {
      await second.close();
    }
  });
});
