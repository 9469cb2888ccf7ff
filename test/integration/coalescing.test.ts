import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Gateway } from '../../src/server.js';
import { deferred, until } from '../helpers/deferred.js';
import { scriptedUpstream, sseEvent } from '../helpers/scripted-upstream.js';
import { startStack, TEST_API_KEY, startTestGateway } from '../helpers/stack.js';

const params = {
  model: 'claude-sonnet-5',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'What is singleflight?' }],
};

/** A latch the mock awaits before answering: requests pile up at the gateway until released. */
function holdingMock() {
  const gate = deferred();
  return { gate, options: { onRequest: () => gate.promise } };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function rawPost(url: string, body: string, headers: Record<string, string> = {}): { done: Promise<RawResponse>; destroy: () => void; firstByte: Promise<void> } {
  const done = deferred<RawResponse>();
  const firstByte = deferred();
  const req = request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01', ...headers },
  }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => {
      chunks.push(c);
      firstByte.resolve();
    });
    res.on('end', () => done.resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    res.on('error', done.reject);
    res.on('aborted', () => done.reject(new Error('aborted')));
  });
  req.on('error', done.reject);
  req.end(body);
  return { done: done.promise, destroy: () => req.destroy(), firstByte: firstByte.promise };
}

async function gatewayFor(upstreamUrl: string, env: Record<string, string> = {}): Promise<Gateway> {
  return startTestGateway({ UPSTREAM_URL: upstreamUrl, ...env });
}

describe('coalescing through the official SDK', () => {
  test('N identical concurrent plain calls cost one upstream call; every client gets the same answer', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options });
    try {
      const client = stack.client();
      const N = 12;
      const calls = Array.from({ length: N }, () => client.messages.create(params).withResponse());
      await until(() => stack.gateway.flights.subscribers() === N, 5_000, 'all clients to join one flight');
      gate.resolve();
      const answers = await Promise.all(calls);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 1);
      for (const { data } of answers) assert.deepEqual(data, answers[0]?.data);
      const roles = answers.map(({ response }) => response.headers.get('x-gateway-coalesce-role'));
      assert.equal(roles.filter((r) => r === 'leader').length, 1);
      assert.equal(roles.filter((r) => r === 'follower').length, N - 1);
      assert.equal(stack.gateway.flights.size, 0, 'the flight is forgotten once done');
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('N identical streams cost one upstream call and every client receives byte-identical SSE', async () => {
    // Two latches, one per round: the second holds the SDK streams until all four share one flight.
    let gate = deferred();
    const stack = await startStack({ mock: { onRequest: () => gate.promise } });
    try {
      const N = 8;
      const body = JSON.stringify({ ...params, stream: true });
      const calls = Array.from({ length: N }, () => rawPost(`${stack.gateway.url}/v1/messages`, body).done);
      await until(() => stack.gateway.flights.subscribers() === N, 5_000, 'all streams to join');
      gate.resolve();
      const answers = await Promise.all(calls);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 1);
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.ok(a.body.equals(answers[0]?.body as Buffer), 'byte-identical streams');
      }
      assert.match(answers[0]?.body.toString() ?? '', /event: message_stop/);

      // The SDK's stream helper gets complete final messages from a shared stream too.
      const client = stack.client();
      gate = deferred();
      const before = stack.mock.stats().requests;
      const streams = Array.from({ length: 4 }, () => client.messages.stream({ ...params, max_tokens: 33 }).finalMessage());
      await until(() => stack.gateway.flights.subscribers() === 4, 5_000, 'the four SDK streams to join one flight');
      gate.resolve();
      const finals = await Promise.all(streams);
      for (const f of finals) assert.deepEqual(f, finals[0]);
      assert.equal(stack.mock.stats().requests - before, 1, 'four identical SDK streams cost exactly one upstream call');
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('byte-identical bodies share a flight; reordered keys, different bodies, betas or tenants never do', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options });
    try {
      const url = `${stack.gateway.url}/v1/messages`;
      const a = JSON.stringify(params);
      const reordered = JSON.stringify({ messages: params.messages, max_tokens: params.max_tokens, model: params.model });
      const calls = [
        rawPost(url, a).done,
        rawPost(url, a).done,
        rawPost(url, reordered).done,
        rawPost(url, JSON.stringify({ ...params, max_tokens: 65 })).done,
        rawPost(url, a, { 'anthropic-beta': 'some-beta-2026-01-01' }).done,
        rawPost(url, a, { 'x-api-key': 'sk-ant-another-tenant-key' }).done,
        rawPost(url, a, { 'x-gateway-coalesce': 'off' }).done,
      ];
      await until(() => stack.gateway.flights.subscribers() === 6, 5_000, 'six shared-capable requests to register');
      await until(() => stack.mock.requests.length === 6, 5_000, 'the distinct calls to reach upstream');
      gate.resolve();
      const answers = await Promise.all(calls);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 6, '1 shared + 4 distinct + 1 opted out');
      assert.ok(answers[0]?.body.equals(answers[1]?.body as Buffer));
      assert.equal(answers[2]?.headers['x-gateway-coalesce-role'], 'leader', 'the same JSON with its keys in another order is another call');
      assert.equal(answers[5]?.headers['x-gateway-coalesce-role'], 'leader', 'another tenant leads its own flight');
      assert.equal(answers[6]?.headers['x-gateway-coalesce-role'], 'bypass');
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('upstream errors reach every subscriber of the flight', async () => {
    for (const [fault, expectStatus] of [['x-mock-status', 500], ['x-mock-fault', 502]] as const) {
      const { gate, options } = holdingMock();
      const stack = await startStack({ mock: options });
      try {
        const value = fault === 'x-mock-status' ? '500' : 'reset';
        const calls = Array.from({ length: 5 }, () => rawPost(`${stack.gateway.url}/v1/messages`, JSON.stringify(params), { [fault]: value }).done);
        await until(() => stack.gateway.flights.subscribers() === 5, 5_000, 'joins');
        gate.resolve();
        const answers = await Promise.all(calls);
        assert.equal(stack.mock.stats().requests, 1);
        for (const a of answers) {
          assert.equal(a.status, expectStatus);
          assert.equal((JSON.parse(a.body.toString()) as { type: string }).type, 'error');
        }
      } finally {
        gate.resolve();
        await stack.close();
      }
    }
  });

  test('a mid-stream upstream error event reaches every subscriber', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options });
    try {
      const client = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-error' } });
      const calls = Array.from({ length: 4 }, () => client.messages.stream(params).finalMessage().then(() => 'ok', (e: unknown) => String(e)));
      await until(() => stack.gateway.flights.subscribers() === 4, 5_000, 'joins');
      gate.resolve();
      const results = await Promise.all(calls);
      assert.equal(stack.mock.stats().requests, 1);
      for (const r of results) assert.match(r, /overloaded/i);
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('COALESCE=off sends every request upstream', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options, env: { COALESCE: 'off' } });
    try {
      const client = stack.client();
      const calls = Array.from({ length: 4 }, () => client.messages.create(params));
      await until(() => stack.mock.requests.length === 4, 5_000, 'all four to reach upstream');
      gate.resolve();
      await Promise.all(calls);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 4);
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('10,000 flights leave the in-flight map empty and the heap flat', async () => {
    const stack = await startStack();
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const client = stack.client({ maxRetries: 0 });
      const run = async (from: number, count: number): Promise<void> => {
        const lanes = 50;
        await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
          for (let i = from + lane; i < from + count; i += lanes) {
            await client.messages.create({ ...params, max_tokens: 8, messages: [{ role: 'user', content: `distinct ${i}` }] });
          }
        }));
      };
      await run(0, 2_000);
      gc();
      const before = process.memoryUsage().heapUsed;
      await run(2_000, 10_000);
      gc();
      const after = process.memoryUsage().heapUsed;
      assert.equal(stack.gateway.flights.size, 0);
      assert.equal(stack.gateway.flights.subscribers(), 0);
      assert.ok(after - before < 16 * 1024 * 1024, `heap grew by ${after - before} bytes over 10,000 flights`);
    } finally {
      await stack.close();
    }
  });
});

describe('coalesced streams, wire level', () => {
  test('a late joiner gets the events so far, then the live ones; leader disconnect leaves followers intact', async () => {
    const release = deferred();
    let upstreamCalls = 0;
    let upstreamClosedEarly = false;
    const upstream = await scriptedUpstream((_req, res) => {
      upstreamCalls++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_scripted' });
      res.write(sseEvent('message_start', { type: 'message_start', n: 1 }));
      res.write(sseEvent('content_block_delta', { type: 'content_block_delta', n: 2 }));
      res.on('close', () => {
        if (!res.writableFinished) upstreamClosedEarly = true;
      });
      void release.promise.then(() => {
        res.write(sseEvent('message_delta', { type: 'message_delta', n: 3 }));
        res.end(sseEvent('message_stop', { type: 'message_stop' }));
      });
    });
    const gateway = await gatewayFor(upstream.url);
    try {
      const url = `${gateway.url}/v1/messages`;
      const body = JSON.stringify({ ...params, stream: true });
      const leader = rawPost(url, body);
      leader.done.catch(() => undefined);
      await leader.firstByte;
      const follower = rawPost(url, body);
      await until(() => gateway.flights.subscribers() === 2, 5_000, 'the follower to join mid-stream');
      leader.destroy();
      await until(() => gateway.flights.subscribers() === 1, 5_000, 'the leader to leave');
      release.resolve();
      const answer = await follower.done;
      assert.equal(upstreamCalls, 1);
      assert.equal(upstreamClosedEarly, false, 'the upstream call ran on for the follower');
      assert.equal(answer.headers['x-gateway-coalesce-role'], 'follower');
      const text = answer.body.toString();
      assert.match(text, /"n":1[\s\S]*"n":2[\s\S]*"n":3[\s\S]*message_stop/);
    } finally {
      release.resolve();
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('when every subscriber has gone, the upstream request is aborted', async () => {
    const upstreamClosed = deferred();
    const upstream = await scriptedUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sseEvent('message_start', { type: 'message_start' }));
      res.on('close', () => upstreamClosed.resolve());
    });
    const gateway = await gatewayFor(upstream.url);
    try {
      const body = JSON.stringify({ ...params, stream: true });
      const a = rawPost(`${gateway.url}/v1/messages`, body);
      await a.firstByte;
      const b = rawPost(`${gateway.url}/v1/messages`, body);
      await until(() => gateway.flights.subscribers() === 2, 5_000, 'both to subscribe');
      a.done.catch(() => undefined);
      b.done.catch(() => undefined);
      a.destroy();
      b.destroy();
      await upstreamClosed.promise;
      await until(() => gateway.flights.size === 0, 5_000, 'the flight to be forgotten');
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });
});

