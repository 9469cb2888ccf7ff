import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AffinityTable } from '../../src/pipeline/affinity/table.js';
import { chooseFirst, withFirst, type AffinityCandidate, type AffinityMoveReason } from '../../src/pipeline/affinity/choose.js';

/** The cache-affinity table (bounded LRU, per-entry TTL on a fake clock) and the pure choice of the first candidate. */

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('the affinity table', () => {
  test('an entry lives for its own TTL, refreshed by a new write, not by a read', () => {
    const time = clock();
    const table = new AffinityTable(10, time.now);
    table.set('five', 'key-a', 300_000);
    table.set('hour', 'key-b', 3_600_000);
    time.advance(299_999);
    assert.equal(table.get('five'), 'key-a');
    time.advance(1);
    assert.equal(table.get('five'), undefined, 'expired at 5 minutes');
    assert.equal(table.get('hour'), 'key-b', 'the 1h entry is still warm');
    table.set('hour', 'key-c', 3_600_000);
    time.advance(3_599_999);
    assert.equal(table.get('hour'), 'key-c', 'the last write counts, with its full TTL');
    time.advance(1);
    assert.equal(table.get('hour'), undefined);
    assert.equal(table.size, 0);
  });

  test('bounded: the least recently used entry goes first; pinned counts follow', () => {
    const time = clock();
    const table = new AffinityTable(3, time.now);
    table.set('s1', 'key-a', 60_000);
    table.set('s2', 'key-a', 60_000);
    table.set('s3', 'key-b', 60_000);
    assert.equal(table.get('s1'), 'key-a', 's1 is now the most recent');
    table.set('s4', 'key-c', 60_000);
    assert.equal(table.size, 3);
    assert.equal(table.get('s2'), undefined, 's2 was the least recently used');
    assert.equal(table.get('s1'), 'key-a');
    assert.deepEqual(['key-a', 'key-b', 'key-c'].map((k) => table.pinnedTo(k)), [1, 1, 1]);
    table.set('s1', 'key-c', 60_000);
    assert.deepEqual(['key-a', 'key-b', 'key-c'].map((k) => table.pinnedTo(k)), [0, 1, 2], 'a session that moved is pinned where it went');
    for (let i = 0; i < 1_000; i++) table.set(`many-${i}`, 'key-a', 60_000);
    assert.equal(table.size, 3);
    assert.equal(table.pinnedTo('key-a'), 3);
  });

  test('expired entries at the old end are dropped by writes', () => {
    const time = clock();
    const table = new AffinityTable(100, time.now);
    for (let i = 0; i < 4; i++) table.set(`old-${i}`, 'key-a', 1_000);
    time.advance(1_000);
    table.set('new', 'key-b', 1_000);
    assert.equal(table.size, 1);
    assert.equal(table.pinnedTo('key-a'), 0);
  });
});

interface Fake extends AffinityCandidate {
  sick?: AffinityMoveReason;
  pinned?: number;
}

function choose(candidates: Fake[], warm: string | undefined) {
  return chooseFirst(candidates, warm, (c) => c.sick, (c) => c.pinned ?? 0);
}

describe('the affinity choice', () => {
  const a: Fake = { name: 'a', tier: 0, weight: 1, pinned: 5 };
  const b: Fake = { name: 'b', tier: 0, weight: 1, pinned: 2 };
  const c: Fake = { name: 'c', tier: 0, weight: 1, pinned: 3 };

  test('hit: the warm candidate goes first; miss: the least pinned per weight', () => {
    assert.deepEqual(choose([a, b, c], 'c'), { first: 2, result: 'hit', reason: 'none' });
    assert.deepEqual(choose([a, b, c], undefined), { first: 1, result: 'miss', reason: 'none' });
    assert.deepEqual(choose([a, b, { ...c, weight: 2 }], undefined), { first: 2, result: 'miss', reason: 'none' }, '3 pinned on weight 2 is lighter than 2 on 1');
    assert.deepEqual(withFirst(['a', 'b', 'c'], 2), ['c', 'a', 'b']);
  });

  test('health overrides affinity: an open breaker, a rested key, low headroom; another tier is never reached', () => {
    for (const sick of ['circuit_open', 'rested', 'headroom'] as const) {
      assert.deepEqual(choose([a, b, { ...c, sick }], 'c'), { first: 1, result: 'moved', reason: sick });
    }
    const otherTier: Fake = { name: 'd', tier: 1, weight: 1, pinned: 0 };
    assert.deepEqual(choose([a, b, otherTier], 'd'), { first: 1, result: 'moved', reason: 'not_serving' });
    assert.deepEqual(choose([a, b], 'gone'), { first: 1, result: 'moved', reason: 'not_serving' });
    assert.deepEqual(choose([{ ...a, sick: 'rested' }, { ...b, sick: 'rested' }], 'a'), { first: 0, result: 'moved', reason: 'rested' }, 'nothing eligible: the plan stands');
  });
});
