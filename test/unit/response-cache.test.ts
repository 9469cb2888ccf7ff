import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { until } from '../helpers/deferred.js';
import { eventLoopIdleMs, packHeaders, ResponseCache, unpackHeaders, type CachedAnswer } from '../../src/pipeline/cache/response-cache.js';
import type { FlightHead } from '../../src/pipeline/coalesce/flight.js';

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

  test('a packed entry keeps the bytes and none of the objects its head was made of, nor the ArrayBuffer the flight read them into; a hit replays the same answer', async () => {
    await keepsNoHeadObjects(new ResponseCache({ ttlMs: 1e9, maxEntries: 10, maxBytes: 1e6 }));
  });

  test('a lingering answer (the tier server.ts builds for COALESCE_LINGER_MS) is packed too: it keeps none of the objects its head was made of, nor its read buffer', async () => {
    await keepsNoHeadObjects(new ResponseCache({ ttlMs: 1e9, maxEntries: 1_000, maxBytes: 16 * 1024 * 1024, now: () => performance.now(), busyGraceMs: 2_000 }));
  });

  test('heads with the names of one before share its name list; a head with other names, or a value that cannot be packed, is still kept exactly', () => {
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 10, maxBytes: 1e6 });
    const heads: FlightHead['headers'][] = [
      ['content-type', 'application/json', 'request-id', 'req_1'],
      ['content-type', 'application/json', 'request-id', 'req_2'],
      ['content-type', 'text/plain', 'x-other', 'o'],
      ['content-type', 'application/json', 'request-id', 'line\nbreak'],
      ['content-type', 'application/json', 'request-id', ['a', 'b']],
      [],
      ['content-type', 'application/json', 'request-id', ''],
    ];
    heads.forEach((headers, i) => cache.set(`k${i}`, { head: { status: 200, headers, eventStream: false }, body: [Buffer.from('x')], bytes: 1, usage: undefined, model: undefined }));
    heads.forEach((headers, i) => assert.deepEqual(cache.get(`k${i}`)?.head.headers, headers, `head ${i}`));
  });

  test('more distinct name lists than are shared, interleaved: every head is kept exactly', () => {
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 1_000, maxBytes: 1e6 });
    const headsOf = (i: number): FlightHead['headers'] => ['content-type', 'application/json', `x-list-${i % 40}`, `v${i}`, 'request-id', `req_${i}`];
    for (let i = 0; i < 200; i++) cache.set(`k${i}`, { head: { status: 200, headers: headsOf(i), eventStream: false }, body: [Buffer.from('x')], bytes: 1, usage: undefined, model: undefined });
    for (let i = 0; i < 200; i++) assert.deepEqual(cache.get(`k${i}`)?.head.headers, headsOf(i), `head ${i}`);
  });
});

/** Stores one answer in the cache and shows that the entry holds none of its head's objects and that a hit replays it. */
async function keepsNoHeadObjects(cache: ResponseCache): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const text = '{"type":"message","content":[]}';
  const expected: string[] = [
    'content-type', 'application/json',
    'request-id', 'req_0123456789',
    'x-empty', '',
    ...Array.from({ length: 17 }, (_, i): [string, string] => [`anthropic-ratelimit-${i}`, String(4000 - i)]).flat(),
  ];
  // Made and stored in a function of its own, so that only the weak references outlive it.
  const store = (): WeakRef<object>[] => {
    // A list of its own (names and values are the test's strings: no object per header any more).
    const headers = expected.slice();
    // As undici gives a chunk: a view of the socket's read, an ArrayBuffer holding the head's bytes too.
    const read = new ArrayBuffer(64 + text.length);
    const chunk = Buffer.from(read, 64, text.length);
    chunk.write(text, 'latin1');
    const body = [chunk];
    const stored: CachedAnswer = { head: { status: 200, headers, eventStream: false }, body, bytes: chunk.length, usage: { input: 3, output: 5, cache_creation: 0, cache_read: 0 }, model: 'claude-sonnet-5' };
    cache.set('k', stored);
    return [new WeakRef(stored), new WeakRef(stored.head), new WeakRef(headers), new WeakRef(body), new WeakRef(read)];
  };
  const refs = store();
  // A WeakRef's target stays alive until the job that made it ends.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.deepEqual(
    refs.map((r) => r.deref() === undefined),
    [true, true, true, true, true],
    "the answer, its head, its header list, the chunk list and the socket read's ArrayBuffer were collected: the entry holds none of them",
  );
  const hit = cache.get('k');
  assert.ok(hit);
  assert.deepEqual(hit.head, { status: 200, headers: expected, eventStream: false });
  assert.equal(hit.body.length, 1);
  const kept = hit.body[0];
  assert.ok(kept);
  assert.equal(kept.toString('latin1'), text, 'the same bytes');
  assert.equal(kept.buffer.byteLength, Buffer.poolSize, "copied once into node's shared Buffer pool");
  assert.deepEqual(hit.usage, { input: 3, output: 5, cache_creation: 0, cache_read: 0 });
  assert.equal(hit.model, 'claude-sonnet-5');
  assert.equal(cache.totalBytes, text.length);
}

describe('response cache: values in bytes (the tier server.ts builds for CACHE=on)', () => {
  const inBytes = (maxBytes = 1e7): ResponseCache => new ResponseCache({ ttlMs: 1e9, maxEntries: 100, maxBytes, valuesInBytes: true });

  test('an entry keeps none of the objects its head was made of, nor its read buffer; a hit replays the same answer', async () => {
    await keepsNoHeadObjects(inBytes(1e6));
  });

  test('every head is replayed exactly: empty values, line breaks, values that are not latin1 or too long for two bytes, list values, no headers', () => {
    const cache = inBytes();
    const heads: FlightHead['headers'][] = [
      ['content-type', 'application/json', 'request-id', 'req_1', 'x-empty', ''],
      ['content-type', 'application/json', 'request-id', 'line\nbreak', 'x-latin1', 'caf\u00e9 \u00ff'],
      ['content-type', 'application/json', 'x-wide', 'arrow \u2192 and \ud83d\ude00'],
      ['content-type', 'application/json', 'x-long', 'v'.repeat(70_000)],
      ['content-type', 'application/json', 'set-cookie', ['a=1', 'b=2']],
      [],
      ['', ''],
    ];
    heads.forEach((headers, i) => cache.set(`k${i}`, { head: { status: 201, headers, eventStream: false, upstream: 'primary' }, body: [Buffer.from(`body ${i}`)], bytes: `body ${i}`.length, usage: undefined, model: undefined }));
    heads.forEach((headers, i) => {
      const hit = cache.get(`k${i}`);
      assert.deepEqual(hit?.head, { status: 201, headers, eventStream: false, upstream: 'primary' }, `head ${i}`);
      assert.equal(Buffer.concat(hit.body).toString(), `body ${i}`, `body ${i}`);
    });
  });

  test('a small answer keeps no list of its values: they are bytes in front of its body, in one pooled Buffer', () => {
    const cache = inBytes();
    cache.set('k', { head: { status: 200, headers: ['content-type', 'application/json', 'request-id', 'req_1'], eventStream: false }, body: [Buffer.from('{}')], bytes: 2, usage: undefined, model: undefined });
    // The entry as the cache holds it (a private field: this is what every collection copies).
    const entry = (cache as unknown as { entries: Map<string, { headers: unknown; body: unknown }> }).entries.get('k');
    assert.ok(entry);
    assert.equal(entry.headers, undefined, 'no list of values');
    assert.ok(Buffer.isBuffer(entry.body) && entry.body.buffer.byteLength === Buffer.poolSize);
    assert.equal(entry.body.toString('latin1'), '\x10\x00application/json\x05\x00req_1{}');
  });

  test('an answer too large for a pooled Buffer keeps its values as strings and its body as the flight retained it', () => {
    const cache = inBytes();
    const large = Buffer.alloc(Buffer.poolSize, 7);
    const headers = ['content-type', 'application/json', 'request-id', 'req_large'];
    cache.set('large', { head: { status: 200, headers, eventStream: false }, body: [large], bytes: large.length, usage: { input: 1, output: 2, cache_creation: 3, cache_read: 4 }, model: 'm' });
    const hit = cache.get('large');
    assert.deepEqual(hit?.head.headers, headers);
    assert.equal(hit.body[0], large, 'the very chunk');
    assert.deepEqual(hit.usage, { input: 1, output: 2, cache_creation: 3, cache_read: 4 });
  });

  test('chunks of a stream come back as the same bytes, after the values', () => {
    const cache = inBytes();
    const chunks = [Buffer.from('event: a\n\n'), Buffer.from('event: b\n\n'), Buffer.alloc(0), Buffer.from('event: c\n\n')];
    const headers = ['content-type', 'text/event-stream', 'request-id', 'req_s'];
    cache.set('stream', { head: { status: 200, headers, eventStream: true }, body: chunks, bytes: 30, usage: undefined, model: undefined });
    const hit = cache.get('stream');
    assert.deepEqual(hit?.head, { status: 200, headers, eventStream: true });
    assert.deepEqual(hit.body, [Buffer.concat(chunks)]);
    assert.equal(cache.totalBytes, 30, 'the bound counts the body alone');
  });
});

describe('response cache: bodies', () => {
  test('a large body is kept as the flight retained it (no copy); chunks of a middling one are joined into one Buffer', () => {
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 10, maxBytes: 1e7 });
    const large = [Buffer.alloc(40_000, 1), Buffer.alloc(40_000, 2)];
    cache.set('large', { head: { status: 200, headers: [], eventStream: true }, body: large, bytes: 80_000, usage: undefined, model: undefined });
    const hit = cache.get('large');
    assert.equal(hit?.body.length, 2);
    assert.ok(hit.body[0] === large[0] && hit.body[1] === large[1], 'the very chunks');
    const middling = [Buffer.alloc(20_000, 3), Buffer.alloc(20_000, 4)];
    cache.set('middling', { head: { status: 200, headers: [], eventStream: true }, body: middling, bytes: 40_000, usage: undefined, model: undefined });
    const joined = cache.get('middling');
    assert.equal(joined?.body.length, 1);
    assert.ok(joined.body[0]?.equals(Buffer.concat(middling)));
    assert.equal(cache.totalBytes, 120_000);
  });
});

describe('response cache: packing', () => {
  test('a head that cannot be packed exactly (a list value) is kept as given; unpacking inverts packing', () => {
    const listed: FlightHead['headers'] = ['content-type', 'text/event-stream', 'set-cookie', ['a=1', 'b=2']];
    assert.equal(packHeaders(listed), undefined);
    const cache = new ResponseCache({ ttlMs: 1e9, maxEntries: 10, maxBytes: 1e6 });
    const chunks = [Buffer.from('event: a\n\n'), Buffer.from('event: b\n\n')];
    cache.set('listed', { head: { status: 200, headers: listed, eventStream: true }, body: chunks, bytes: 20, usage: undefined, model: undefined });
    const hit = cache.get('listed');
    assert.deepEqual(hit?.head, { status: 200, headers: listed, eventStream: true });
    assert.deepEqual(hit.body, [Buffer.concat(chunks)], 'a small body of two chunks is kept as one');
    // Lists need no separator: any name and value packs exactly.
    for (const headers of [[], ['a', ''], ['x', 'y', 'empty', '', 'request-id', 'req_1'], ['', 'no name'], ['a\nb', 'c\nd']] as string[][]) {
      const packed = packHeaders(headers);
      assert.ok(packed);
      assert.deepEqual(unpackHeaders(packed), headers);
    }
  });
});
