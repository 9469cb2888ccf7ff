import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../helpers/deferred.js';
import { eventLoopIdleMs, ResponseCache, type CachedAnswer } from '../../src/pipeline/cache/response-cache.js';

function answer(bytes: number): CachedAnswer {
  return { head: { status: 200, headers: [], eventStream: false }, body: [Buffer.alloc(bytes)], bytes, usage: undefined, model: undefined };
}

describe('response cache', () => {
  test('entries expire after the TTL', () => {
    let now = 0;
    const cache = new ResponseCache({ ttlMs: 1000, maxEntries: 10, maxBytes: 1e6, now: () => now });
    cache.set('a', answer(10));
    now = 999;
    assert.ok(cache.get('a'));
    now = 1000;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
    assert.equal(cache.totalBytes, 0);
  });

  test('a write drops the expired entries at the front: a short window holds only live answers, not maxEntries dead ones', () => {
    let now = 0;
    const cache = new ResponseCache({ ttlMs: 100, maxEntries: 1000, maxBytes: 1e6, now: () => now });
    for (let i = 0; i < 10; i++) cache.set(`old ${i}`, answer(10));
    now = 50;
    cache.set('young', answer(10));
    now = 100;
    cache.set('new', answer(10));
    assert.equal(cache.size, 2, 'the ten expired entries are gone, the live ones stay');
    assert.equal(cache.totalBytes, 20);
    assert.ok(cache.get('young'));
    assert.ok(cache.get('new'));
  });

  test('bounded by entries, least recently used out first', () => {
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 2, maxBytes: 1e6 });
    cache.set('a', answer(1));
    cache.set('b', answer(1));
    assert.ok(cache.get('a'));
    cache.set('c', answer(1));
    assert.ok(cache.get('a'));
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('c'));
  });

  test('bounded by bytes; an entry larger than the bound is never stored', () => {
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 100, maxBytes: 100 });
    for (const k of ['a', 'b', 'c']) cache.set(k, answer(40));
    assert.equal(cache.size, 2);
    assert.equal(cache.totalBytes, 80);
    assert.equal(cache.get('a'), undefined);
    cache.set('huge', answer(101));
    assert.equal(cache.get('huge'), undefined);
    cache.set('b', answer(50));
    assert.equal(cache.totalBytes, 90, 'replacing an entry releases its old bytes');
  });

  test('busy grace: past the TTL an entry answers only while the loop has not been idle since it was set, and never past the grace', () => {
    let now = 0;
    let idle = 7;
    const cache = new ResponseCache({ ttlMs: 100, maxEntries: 10, maxBytes: 1e6, now: () => now, busyGraceMs: 1_000, loopIdleMs: () => idle });
    cache.set('busy', answer(10));
    cache.set('idled', answer(10));
    cache.set('too late', answer(10));
    now = 600;
    assert.ok(cache.get('busy'), 'no idle moment since the call ended: still served past the TTL');
    now = 1_099;
    assert.ok(cache.get('too late'), 'still within TTL + grace');
    now = 1_100;
    assert.equal(cache.get('too late'), undefined, 'never past TTL + grace, however busy');
    now = 700;
    idle = 7.001;
    assert.equal(cache.get('idled'), undefined, 'the loop waited for input once: anything read now arrived after the window');
    assert.equal(cache.get('busy'), undefined);
    assert.equal(cache.size, 0);
    // Within the TTL the idle count does not matter.
    cache.set('fresh', answer(10));
    idle = 99;
    now = 799;
    assert.ok(cache.get('fresh'));
  });

  test('busy grace off (the default, and the response cache): the TTL alone decides', () => {
    let now = 0;
    const cache = new ResponseCache({ ttlMs: 100, maxEntries: 10, maxBytes: 1e6, now: () => now, loopIdleMs: () => 0 });
    cache.set('a', answer(10));
    now = 100;
    assert.equal(cache.get('a'), undefined);
  });

  test("libuv's idle count, which the grace reads, stands still while the loop is busy and moves once it waits", async () => {
    const before = eventLoopIdleMs();
    const spinUntil = performance.now() + 30;
    while (performance.now() < spinUntil) {
      // busy: the loop never gets to wait
    }
    assert.equal(eventLoopIdleMs(), before);
    // Waiting on timers is idle time (until() polls with short timers; it fails loudly if the count never moves).
    await until(() => eventLoopIdleMs() > before, 5_000, 'the idle count to move while the loop waits');
  });
});
