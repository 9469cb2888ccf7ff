import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseCache, type CachedAnswer } from '../../src/pipeline/cache/response-cache.js';

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
});
