import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { KeyCache } from '../../src/governance/key-cache.js';
import type { Principal } from '../../src/governance/model.js';
import type { GovernanceStore, KeyChange, KeyChanges } from '../../src/governance/store.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';

const principal = (keyId: string, over: Partial<Principal> = {}): Principal => ({
  keyId, keyName: keyId, teamId: 'team_1', teamName: 't', userId: undefined, limits: {}, keyBudgets: [], teamBudgets: [], expiresAt: undefined, ...over,
});

/** A store whose key changes a test scripts: each poll gets the changes queued since, or the failure set. */
function scriptedStore() {
  let queued: KeyChange[] = [];
  let seq = 0;
  let failure: Error | undefined;
  const store = {
    keysChangedSince: (cursor: number): Promise<KeyChanges> => {
      if (failure !== undefined) return Promise.reject(failure);
      const changes = queued;
      queued = [];
      seq += changes.length;
      return Promise.resolve({ changes, cursor: changes.length === 0 ? cursor : seq, more: false });
    },
  } as unknown as GovernanceStore;
  return {
    store,
    change: (hash: string, p: Principal, revoked = false) => queued.push({ hash, principal: p, revoked }),
    fail: (err: Error | undefined) => (failure = err),
  };
}

describe('the key cache', () => {
  test('holds live keys by hash; a rotation drops the old hash, a revocation the key; expiry needs no poll', async () => {
    const s = scriptedStore();
    let now = 1_000;
    const cache = new KeyCache(s.store, { pollMs: 1_000, logger: createLogger('silent'), registry: new Registry(), now: () => now });
    s.change('h1', principal('k1'));
    s.change('h2', principal('k2', { expiresAt: 2_000 }));
    await cache.poll();
    assert.equal(cache.lookup('h1')?.keyId, 'k1');
    assert.equal(cache.lookup('h2')?.keyId, 'k2');
    now = 2_000;
    assert.equal(cache.lookup('h2'), undefined, 'expired at its instant');
    s.change('h1b', principal('k1'));
    await cache.poll();
    assert.equal(cache.lookup('h1'), undefined, 'the rotated-away secret');
    assert.equal(cache.lookup('h1b')?.keyId, 'k1');
    s.change('h1b', principal('k1'), true);
    await cache.poll();
    assert.equal(cache.lookup('h1b'), undefined, 'revoked');
    assert.equal(cache.size, 1);
  });

  test('a failed poll keeps the last known keys, counts every failure, logs once per outage, and recovers', async () => {
    const s = scriptedStore();
    const logs = new LogCapture();
    const registry = new Registry();
    const cache = new KeyCache(s.store, { pollMs: 1_000, logger: createLogger('info', logs), registry });
    s.change('h1', principal('k1'));
    await cache.tick();
    s.fail(new Error('connection refused'));
    await cache.tick();
    await cache.tick();
    assert.equal(cache.lookup('h1')?.keyId, 'k1', 'still known during the outage');
    const failures = await registry.getSingleMetric('governance_key_poll_failures_total')?.get();
    assert.equal(failures?.values[0]?.value, 2);
    assert.equal(logs.records().filter((r) => r.msg === 'governance database poll failed: the last known keys stay in force until it answers').length, 1, 'once per outage');
    s.fail(undefined);
    s.change('h1', principal('k1'), true);
    await cache.tick();
    assert.equal(cache.lookup('h1'), undefined, 'changes apply again');
    assert.equal(logs.records().filter((r) => r.msg === 'governance database reachable again: key changes apply again').length, 1);
  });
});
