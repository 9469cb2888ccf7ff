import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { deferred, until } from '../helpers/deferred.js';
import { pacedUpstream } from '../helpers/paced-upstream.js';
import { startTestGateway, TEST_API_KEY } from '../helpers/stack.js';

/**
 * COALESCE_REJOIN_MS through a real gateway and a real upstream over sockets: a client that
 * disconnects mid-stream and retries within the window causes one upstream call (counted at the
 * upstream) and gets the whole answer byte for byte; one that never returns has the upstream call
 * aborted when the window ends (the upstream sees its connection close before the end).
 */

const BODY = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'rejoin me' }] });

function post(url: string): { done: Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>; firstByte: Promise<void>; destroy: () => void } {
  const done = deferred<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>();
  const firstByte = deferred();
  const req = request(
    `${url}/v1/messages`,
    { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' } },
    (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        firstByte.resolve();
      });
      res.on('end', () => done.resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', done.reject);
      res.on('aborted', () => done.reject(new Error('aborted')));
    },
  );
  req.on('error', done.reject);
  req.end(BODY);
  done.promise.catch(() => undefined);
  return { done: done.promise, firstByte: firstByte.promise, destroy: () => req.destroy() };
}

describe('rejoin (COALESCE_REJOIN_MS)', () => {
  test('a client that disconnects mid-stream and retries within the window causes one upstream call and gets the whole answer', async () => {
    const upstream = await pacedUpstream();
    // A window far longer than the test: nothing here depends on timing.
    const gateway = await startTestGateway({ UPSTREAM_URL: upstream.url, COALESCE_REJOIN_MS: '60000', COALESCE_LINGER_MS: '0' });
    try {
      const first = post(gateway.url);
      await first.firstByte;
      first.destroy();
      await until(() => gateway.flights.waitingForRejoin === 1, 5_000, 'the abandoned flight to wait for a rejoin');
      const retry = post(gateway.url);
      await until(() => gateway.flights.subscribers() === 1, 5_000, 'the retry to join the waiting flight');
      upstream.release();
      const answer = await retry.done;
      assert.equal(answer.status, 200);
      assert.equal(answer.body, upstream.expected, 'byte-identical to what the upstream sent, from its first byte');
      assert.equal(answer.headers['x-gateway-coalesce-role'], 'follower');
      assert.equal(upstream.calls, 1, 'one upstream call for both');
      assert.equal(upstream.abandoned, 0, 'the upstream call was never aborted');
      assert.equal(gateway.flights.waitingForRejoin, 0);
    } finally {
      upstream.release();
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('a client that never returns: the upstream call is aborted when the window ends', async () => {
    const upstream = await pacedUpstream();
    const gateway = await startTestGateway({ UPSTREAM_URL: upstream.url, COALESCE_REJOIN_MS: '200', COALESCE_LINGER_MS: '0' });
    try {
      const first = post(gateway.url);
      await first.firstByte;
      first.destroy();
      await until(() => gateway.flights.waitingForRejoin === 1, 5_000, 'the abandoned flight to wait for a rejoin');
      await until(() => upstream.abandoned === 1, 5_000, 'the upstream to see the abort');
      await until(() => gateway.flights.size === 0 && gateway.flights.waitingForRejoin === 0, 5_000, 'the flight to be forgotten');
      assert.equal(upstream.calls, 1);
    } finally {
      upstream.release();
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('shutdown does not wait out a window: the waiting call is aborted (the upstream pool closes under it)', async () => {
    const upstream = await pacedUpstream();
    const gateway = await startTestGateway({ UPSTREAM_URL: upstream.url, COALESCE_REJOIN_MS: '60000', COALESCE_LINGER_MS: '0', SHUTDOWN_DELAY_MS: '0' });
    try {
      const first = post(gateway.url);
      await first.firstByte;
      first.destroy();
      await until(() => gateway.flights.waitingForRejoin === 1, 5_000, 'the abandoned flight to wait for a rejoin');
      await gateway.shutdown();
      await until(() => upstream.abandoned === 1, 5_000, 'the upstream to see the abort');
      assert.equal(gateway.flights.waitingForRejoin, 0);
    } finally {
      upstream.release();
      await gateway.shutdown();
      await upstream.close();
    }
  });
});
