import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { deferred, until } from '../helpers/deferred.js';
import { scrape, sum } from '../helpers/prom.js';
import { startStack, TEST_API_KEY } from '../helpers/stack.js';
import { selfSignedCert } from '../helpers/tls-cert.js';

/**
 * The upstream pool: every call can be live at once by default, a wait for a connection is bounded
 * and visible, and with UPSTREAM_HTTP2=on many calls share a few connections. Real gateway, real mock,
 * real sockets; the order of events is forced by holding requests at the mock.
 */

const HEADERS = { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' };
const body = (content: string, stream = false): string =>
  JSON.stringify({ model: 'claude-haiku-5-5', max_tokens: 8, ...(stream ? { stream: true } : {}), messages: [{ role: 'user', content }] });

describe('upstream pool', () => {
  test('a wait for a connection ends at UPSTREAM_POOL_WAIT_MS with an Anthropic-shaped 529, never reaching upstream, and shows in /metrics', async () => {
    const hold = deferred();
    const stack = await startStack({
      env: { UPSTREAM_CONNECTIONS: '1', UPSTREAM_POOL_WAIT_MS: '300' },
      mock: { onRequest: (r) => (r.body.includes('hold') ? hold.promise : undefined) },
    });
    const client = new Pool(stack.gateway.url, { connections: 4 });
    try {
      const first = client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('hold') });
      await until(() => stack.mock.stats().activeRequests === 1, 5_000, 'the first call to hold the only connection');
      const second = client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('waits') });
      await until(() => stack.gateway.upstream.snapshot().queued === 1, 5_000, 'the second call to queue');
      assert.equal(sum(await scrape(stack.gateway.url), 'upstream_pool_queued_requests'), 1, 'the wait is visible in /metrics');

      const refused = await second;
      assert.equal(refused.statusCode, 529);
      assert.equal(refused.headers['retry-after'], '1');
      const error = (await refused.body.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(error.type, 'error');
      assert.equal(error.error.type, 'overloaded_error');
      assert.match(error.error.message, /UPSTREAM_POOL_WAIT_MS/);
      assert.equal(stack.mock.stats().requests, 1, 'the refused call never reached upstream');

      const metrics = await scrape(stack.gateway.url);
      assert.equal(sum(metrics, 'upstream_pool_wait_timeouts_total'), 1);
      assert.equal(sum(metrics, 'upstream_pool_queued_requests'), 0);
      assert.equal(sum(metrics, 'upstream_pool_active_requests'), 1);
      assert.equal(sum(metrics, 'upstream_pool_capacity'), 1);

      hold.resolve();
      const answered = await first;
      assert.equal(answered.statusCode, 200);
      await answered.body.dump();
    } finally {
      hold.resolve();
      await client.close();
      await stack.close();
    }
  });

  test('a client that leaves while waiting gives its place up at once; the next waiter gets the freed connection', async () => {
    const hold = deferred();
    const stack = await startStack({
      env: { UPSTREAM_CONNECTIONS: '1', UPSTREAM_POOL_WAIT_MS: '60000' },
      mock: { onRequest: (r) => (r.body.includes('hold') ? hold.promise : undefined) },
    });
    const client = new Pool(stack.gateway.url, { connections: 4 });
    try {
      const first = client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('hold') });
      await until(() => stack.mock.stats().activeRequests === 1, 5_000, 'the first call to hold the only connection');
      const leaving = new AbortController();
      const abandoned = client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('abandoned'), signal: leaving.signal }).catch((e: unknown) => e);
      await until(() => stack.gateway.upstream.snapshot().queued === 1, 5_000, 'the abandoned call to queue');
      leaving.abort();
      await abandoned;
      await until(() => stack.gateway.upstream.snapshot().queued === 0, 5_000, 'the abandoned call to leave the queue');

      const next = client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('next') });
      await until(() => stack.gateway.upstream.snapshot().queued === 1, 5_000, 'the next call to queue');
      hold.resolve();
      const [a, b] = await Promise.all([first, next]);
      assert.equal(a.statusCode, 200);
      assert.equal(b.statusCode, 200);
      await Promise.all([a.body.dump(), b.body.dump()]);
      assert.deepEqual(
        stack.mock.requests.map((r) => (JSON.parse(r.body) as { messages: { content: string }[] }).messages[0]?.content),
        ['hold', 'next'],
        'the abandoned call never reached upstream',
      );
      const metrics = await scrape(stack.gateway.url);
      assert.equal(sum(metrics, 'upstream_pool_wait_seconds_count'), 1, 'the call that waited and got a connection is observed');
      assert.equal(sum(metrics, 'upstream_pool_active_requests'), 0, 'every permit came back');
    } finally {
      hold.resolve();
      await client.close();
      await stack.close();
    }
  });

  test('with default settings 1,000 concurrent streams are all live at the upstream at once', async () => {
    const hold = deferred();
    const stack = await startStack({ mock: { onRequest: () => hold.promise } });
    const client = new Pool(stack.gateway.url, { connections: 1_000 });
    try {
      const streams = Array.from({ length: 1_000 }, async (_, i) => {
        const res = await client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body(`live ${i}`, true) });
        return res.statusCode === 200 && (await res.body.text()).includes('message_stop');
      });
      await until(() => stack.mock.stats().activeRequests === 1_000, 30_000, 'all 1,000 calls to be at the upstream at once');
      hold.resolve();
      const done = await Promise.all(streams);
      assert.equal(done.filter(Boolean).length, 1_000);
      assert.equal(stack.mock.stats().peakActiveRequests, 1_000);
    } finally {
      hold.resolve();
      await client.close();
      await stack.close();
    }
  });

  test('UPSTREAM_HTTP2=on: 150 live streams share 2 h2c connections and reach the SDK intact', async () => {
    const hold = deferred();
    const stack = await startStack({
      env: { UPSTREAM_HTTP2: 'on', UPSTREAM_CONNECTIONS: '2' },
      mock: { http2: true, onRequest: () => hold.promise },
    });
    try {
      const sdk = stack.client();
      const streams = Array.from({ length: 150 }, (_, i) =>
        sdk.messages.stream({ model: 'claude-haiku-5-5', max_tokens: 8, messages: [{ role: 'user', content: `h2 ${i}` }] }).finalMessage(),
      );
      await until(() => stack.mock.stats().activeRequests === 150, 15_000, 'all 150 calls to be at the upstream at once');
      hold.resolve();
      const messages = await Promise.all(streams);
      assert.equal(messages.length, 150);
      for (const m of messages) assert.ok(m.content.length > 0 && m.stop_reason !== null);
      const stats = stack.mock.stats();
      assert.ok(stats.connections <= 2, `at most 2 upstream connections, saw ${stats.connections}`);
      assert.equal(stats.http2Connections, stats.connections, 'every upstream connection spoke HTTP/2');
      assert.equal(stats.peakActiveRequests, 150);
    } finally {
      hold.resolve();
      await stack.close();
    }
  });

  test('UPSTREAM_HTTP2=on against an upstream without HTTP/2 fails fast with an Anthropic-shaped 502', async () => {
    const stack = await startStack({ env: { UPSTREAM_HTTP2: 'on', UPSTREAM_RETRIES: '0' } });
    const client = new Pool(stack.gateway.url, { connections: 1 });
    try {
      const res = await client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('no h2') });
      assert.equal(res.statusCode, 502);
      const error = (await res.body.json()) as { type: string; error: { type: string } };
      assert.equal(error.type, 'error');
      assert.equal(error.error.type, 'api_error');
      assert.equal(stack.mock.stats().requests, 0);
    } finally {
      await client.close();
      await stack.close();
    }
  });

  describe('HTTP/2 over TLS', () => {
    const tls = selfSignedCert();
    const skip = tls === undefined ? 'openssl is not installed' : false;
    after(() => tls?.remove());

    test('UPSTREAM_HTTP2=on negotiates h2 by ALPN with an upstream trusted through UPSTREAM_CA_FILE', { skip }, async () => {
      if (tls === undefined) return;
      const stack = await startStack({ env: { UPSTREAM_HTTP2: 'on', UPSTREAM_CA_FILE: tls.certFile }, mock: { http2: true, tls } });
      try {
        const sdk = stack.client();
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => sdk.messages.create({ model: 'claude-haiku-5-5', max_tokens: 8, messages: [{ role: 'user', content: `tls ${i}` }] })));
        assert.equal(answers.length, 20);
        const stats = stack.mock.stats();
        assert.ok(stats.http2Connections >= 1 && stats.http2Connections === stats.connections, `every connection spoke h2: ${JSON.stringify(stats)}`);
      } finally {
        await stack.close();
      }
    });

    test('an https upstream that only offers HTTP/1.1 is refused with a 502, never used as HTTP/1.1', { skip }, async () => {
      if (tls === undefined) return;
      const stack = await startStack({ env: { UPSTREAM_HTTP2: 'on', UPSTREAM_CA_FILE: tls.certFile, UPSTREAM_RETRIES: '0' }, mock: { tls } });
      const client = new Pool(stack.gateway.url, { connections: 1 });
      try {
        const res = await client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('h1 only') });
        assert.equal(res.statusCode, 502);
        assert.equal(((await res.body.json()) as { type: string }).type, 'error');
        assert.equal(stack.mock.stats().requests, 0, 'nothing was sent over HTTP/1.1');
      } finally {
        await client.close();
        await stack.close();
      }
    });

    test('without UPSTREAM_CA_FILE a self-signed upstream is not trusted (502)', { skip }, async () => {
      if (tls === undefined) return;
      const stack = await startStack({ env: { UPSTREAM_HTTP2: 'on', UPSTREAM_RETRIES: '0' }, mock: { http2: true, tls } });
      const client = new Pool(stack.gateway.url, { connections: 1 });
      try {
        const res = await client.request({ path: '/v1/messages', method: 'POST', headers: HEADERS, body: body('untrusted') });
        assert.equal(res.statusCode, 502);
        await res.body.dump();
        assert.equal(stack.mock.stats().requests, 0);
      } finally {
        await client.close();
        await stack.close();
      }
    });
  });
});
