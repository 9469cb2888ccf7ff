import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { deferred, until } from '../helpers/deferred.js';
import { freePort } from '../helpers/ports.js';
import { scrape, sum } from '../helpers/prom.js';
import { scriptedUpstream, sseEvent, type ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';

const MODEL = 'claude-sonnet-5';
const BREAKER = { BREAKER_VOLUME_THRESHOLD: '4', BREAKER_ERROR_THRESHOLD: '50', BREAKER_WINDOW_MS: '10000', BREAKER_RESET_TIMEOUT_MS: '30000' };
const GATEWAY_KEY = 'gw-key-0123456789abcdef';

function params(content: string) {
  return { model: MODEL, max_tokens: 16, messages: [{ role: 'user' as const, content }] };
}

/** Lets loopback I/O make progress without advancing the (fake) clock. */
async function settleIo(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

function message(text: string): string {
  return JSON.stringify({
    id: 'msg_scripted',
    type: 'message',
    role: 'assistant',
    model: MODEL,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 3, output_tokens: 1 },
  });
}

describe('failover across upstreams', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    mock.timers.reset();
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  async function mockUpstream(): Promise<MockUpstream> {
    const m = await createMockUpstream();
    cleanup.push(() => m.close());
    return m;
  }
  async function scripted(handler: Parameters<typeof scriptedUpstream>[0]): Promise<ScriptedUpstream> {
    const s = await scriptedUpstream(handler);
    cleanup.push(() => s.close());
    return s;
  }
  async function gateway(...args: Parameters<typeof startUpstreamsGateway>): Promise<UpstreamsStack> {
    const g = await startUpstreamsGateway(...args);
    cleanup.push(() => g.close());
    return g;
  }

  test('primary answers 529: calls land on the secondary with no client error, the breaker opens, a probe closes it and traffic returns', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const primary = await mockUpstream();
    const secondary = await mockUpstream();
    primary.setFaults({ status: 529 });
    const stack = await gateway([
      { name: 'primary', url: primary.url },
      { name: 'secondary', url: secondary.url, tier: 1 },
    ], { ...BREAKER, UPSTREAM_RETRIES: '0' });
    const client = stack.client({ defaultHeaders: { 'anthropic-beta': 'context-management-2025-06-27' } });

    for (let i = 0; i < 4; i++) {
      const { data, response } = await client.messages.create(params(`outage ${i}`)).withResponse();
      assert.equal(data.type, 'message');
      assert.equal(response.headers.get('x-gateway-upstream'), 'secondary');
    }
    assert.equal(primary.stats().requests, 4, 'each call tried the primary once');
    assert.equal(secondary.stats().requests, 4);
    // Faithful on the failover path: beta header, query string and body bytes reach the secondary.
    const moved = secondary.requests[0];
    assert.ok(moved !== undefined);
    assert.equal(moved.headers['anthropic-beta'], 'context-management-2025-06-27');
    assert.equal(moved.body, primary.requests[0]?.body, 'the same body bytes');
    assert.equal(moved.path, primary.requests[0]?.path);

    // The primary's breaker is open now: the next call goes straight to the secondary.
    const { response: direct } = await client.messages.create(params('while open')).withResponse();
    assert.equal(direct.headers.get('x-gateway-upstream'), 'secondary');
    assert.equal(primary.stats().requests, 4, 'no call to an open primary');

    let samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'circuit_breaker_state', { breaker: `primary/${MODEL}` }), 2);
    assert.equal(sum(samples, 'upstream_failovers_total', { from: 'primary', to: 'secondary', reason: 'overloaded' }), 4);
    assert.equal(sum(samples, 'upstream_failovers_total', { from: 'primary', to: 'secondary', reason: 'circuit_open' }), 1);
    assert.equal(sum(samples, 'claude_api_calls_total', { upstream: 'primary', status: '529' }), 4, 'failed attempts are upstream calls too');
    assert.equal(sum(samples, 'claude_api_calls_total', { upstream: 'secondary', status: '200' }), 5);
    assert.ok(sum(samples, 'claude_tokens_total', { upstream: 'secondary' }) > 0);
    assert.equal(sum(samples, 'claude_tokens_total', { upstream: 'primary' }), 0, 'nothing billed to the primary');

    // The primary recovers; after the reset timeout one probe goes there, succeeds and closes the breaker.
    primary.setFaults(null);
    mock.timers.tick(30_000);
    await settleIo();
    const { response: probe } = await client.messages.create(params('probe')).withResponse();
    assert.equal(probe.headers.get('x-gateway-upstream'), 'primary');
    await settleIo();
    const { response: back } = await client.messages.create(params('back')).withResponse();
    assert.equal(back.headers.get('x-gateway-upstream'), 'primary', 'traffic returns to the primary');
    samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'circuit_breaker_state', { breaker: `primary/${MODEL}` }), 0);
  });

  test('a connect failure moves on at once (no retry back-off on a dead upstream), free of the retry budget (nothing was sent)', async () => {
    const secondary = await mockUpstream();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const stack = await gateway([
      { name: 'dead', url: dead },
      { name: 'secondary', url: secondary.url, tier: 1 },
    ], { UPSTREAM_RETRIES: '2', RETRY_BASE_DELAY_MS: '60000', RETRY_MAX_DELAY_MS: '60000', RETRY_BUDGET_PERCENT: '0', BREAKER: 'off' });
    for (let i = 0; i < 3; i++) {
      const { data, response } = await stack.client().messages.create(params(`dead primary ${i}`)).withResponse();
      assert.equal(data.type, 'message');
      assert.equal(response.headers.get('x-gateway-upstream'), 'secondary');
    }
    const samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'upstream_failovers_total', { from: 'dead', to: 'secondary', reason: 'connect' }), 3, 'an empty retry budget does not stop moves that sent nothing');
    // Each attempt is counted once, under the upstream it went to.
    assert.equal(sum(samples, 'claude_api_calls_total', { upstream: 'dead', status: 'error' }), 3);
    assert.equal(sum(samples, 'claude_api_calls_total', { upstream: 'secondary', status: '200' }), 3);
    assert.equal(sum(samples, 'claude_api_calls_total'), 6);
    assert.equal(sum(samples, 'upstream_retries_total'), 0, 'a 60 s retry back-off would have held the call: failover is the retry');
  });

  test('a stream whose first event is error fails over; one that already sent events does not', async () => {
    const primary = await scripted((req, res) => {
      void readBody(req).then((body) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (body.includes('cold')) {
          res.end(sseEvent('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }));
          return;
        }
        res.write(sseEvent('message_start', { type: 'message_start', message: { id: 'msg_p', type: 'message', role: 'assistant', model: MODEL, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } } }));
        res.end(sseEvent('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded mid-stream' } }));
      });
    });
    const secondary = await mockUpstream();
    const stack = await gateway([
      { name: 'primary', url: primary.url },
      { name: 'secondary', url: secondary.url, tier: 1 },
    ]);
    const client = stack.client();

    const stream = client.messages.stream(params('cold start'));
    const final = await stream.finalMessage();
    assert.equal(final.type, 'message');
    assert.ok(final.content.length > 0, 'the secondary answered the whole stream');
    assert.equal(secondary.stats().requests, 1);

    const started = client.messages.stream(params('warm start'));
    await assert.rejects(started.finalMessage(), /Overloaded mid-stream/, 'bytes reached the client: the stream ends with the error event, as before');
    assert.equal(secondary.stats().requests, 1, 'no failover once an event was sent');
    const samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'upstream_failovers_total', { reason: 'stream_error' }), 1);
  });

  test('followers of a flight that failed over get the secondary answer: one upstream call per attempt', async () => {
    const gate = deferred();
    const primary = await createMockUpstream({ onRequest: () => gate.promise });
    cleanup.push(() => primary.close());
    primary.setFaults({ status: 529 });
    const secondary = await mockUpstream();
    const stack = await gateway([
      { name: 'primary', url: primary.url },
      { name: 'secondary', url: secondary.url, tier: 1 },
    ]);
    const client = stack.client();
    const calls = Array.from({ length: 3 }, () => client.messages.create(params('shared')).withResponse());
    await until(() => stack.gateway.flights.subscribers() === 3, 5_000, 'three clients to join one flight');
    await until(() => primary.requests.length === 1, 5_000, 'the primary to hold the one call');
    gate.resolve();
    const answers = await Promise.all(calls);
    for (const { data, response } of answers) {
      assert.equal(data.type, 'message');
      assert.equal(response.headers.get('x-gateway-upstream'), 'secondary');
    }
    assert.deepEqual(answers.map((a) => a.response.headers.get('x-gateway-coalesce-role')).sort(), ['follower', 'follower', 'leader']);
    assert.equal(primary.stats().requests, 1);
    assert.equal(secondary.stats().requests, 1);
  });

  test('when every upstream is open the answer is 529 with the earliest retry-after', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const a = await mockUpstream();
    const b = await mockUpstream();
    a.setFaults({ status: 500 });
    b.setFaults({ status: 500 });
    const stack = await gateway([
      { name: 'a', url: a.url },
      { name: 'b', url: b.url, tier: 1 },
    ], { BREAKER_VOLUME_THRESHOLD: '1', BREAKER_RESET_TIMEOUT_MS: '30000', UPSTREAM_RETRIES: '0', FAILOVER_MAX_ATTEMPTS: '1' });
    const client = stack.client();
    // FAILOVER_MAX_ATTEMPTS=1: the 500 of `a` is the answer (no move), and opens a's breaker.
    await assert.rejects(client.messages.create(params('open a')), (err: unknown) => (err as { status?: number }).status === 500);
    mock.timers.tick(10_000);
    // `a` is open (free move); `b` answers 500 and opens too, 10 s later than `a`.
    await assert.rejects(client.messages.create(params('open b')), (err: unknown) => (err as { status?: number }).status === 500);
    const res = await fetch(`${stack.gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test-0123456789abcdef', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(params('both open')),
    });
    assert.equal(res.status, 529);
    assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'overloaded_error');
    assert.equal(res.headers.get('retry-after'), '20', 'a reopens in 20 s, b in 30 s: the earliest');
  });

  test('a 429 on one key moves the call to another key of the tier, and the key rests until its retry-after', async () => {
    const seen: string[] = [];
    const keys = await scripted((req, res) => {
      const key = String(req.headers['x-api-key']);
      seen.push(key);
      void readBody(req).then(() => {
        if (key === 'sk-key-a-0123456789') {
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30', 'anthropic-ratelimit-requests-remaining': '0', 'anthropic-ratelimit-requests-limit': '50' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Rate limited' } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(message('from key b'));
      });
    });
    const stack = await gateway(
      [
        { name: 'key-a', url: keys.url, api_key_env: 'TEST_KEY_A', weight: 1_000_000 },
        { name: 'key-b', url: keys.url, api_key_env: 'TEST_KEY_B', weight: 0.001 },
      ],
      { GATEWAY_API_KEYS: GATEWAY_KEY, TEST_KEY_A: 'sk-key-a-0123456789', TEST_KEY_B: 'sk-key-b-0123456789' },
      GATEWAY_KEY,
    );
    const client = stack.client();
    const first = await client.messages.create(params('limited')).withResponse();
    assert.equal(first.response.headers.get('x-gateway-upstream'), 'key-b');
    assert.deepEqual(seen, ['sk-key-a-0123456789', 'sk-key-b-0123456789'], 'key a first (weight), then key b; the gateway key never travels');
    const second = await client.messages.create(params('rested')).withResponse();
    assert.equal(second.response.headers.get('x-gateway-upstream'), 'key-b');
    assert.deepEqual(seen.slice(2), ['sk-key-b-0123456789'], 'key a rests: it is not asked again within its retry-after');
  });

  test('keys on one host: a move after a 529 takes a retry-budget token (the host is overloaded); to another host it is free', async () => {
    const seen: string[] = [];
    const host = await scripted((req, res) => {
      const key = String(req.headers['x-api-key']);
      seen.push(key);
      void readBody(req).then(() => {
        const overloaded = key === 'sk-key-a-0123456789';
        res.writeHead(overloaded ? 529 : 200, { 'content-type': 'application/json' });
        res.end(overloaded ? JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }) : message('from key b'));
      });
    });
    const other = await mockUpstream();
    const env = { GATEWAY_API_KEYS: GATEWAY_KEY, TEST_KEY_A: 'sk-key-a-0123456789', TEST_KEY_B: 'sk-key-b-0123456789', RETRY_BUDGET_PERCENT: '0', BREAKER: 'off' };
    const sameHost = await gateway(
      [
        { name: 'key-a', url: host.url, api_key_env: 'TEST_KEY_A' },
        { name: 'key-b', url: host.url, api_key_env: 'TEST_KEY_B', tier: 1 },
      ],
      env,
      GATEWAY_KEY,
    );
    await assert.rejects(sameHost.client().messages.create(params('same host')), (err: unknown) => (err as { status?: number }).status === 529);
    assert.deepEqual(seen, ['sk-key-a-0123456789'], 'no budget: the overloaded host is not asked again through another key');
    const otherHost = await gateway(
      [
        { name: 'key-a', url: host.url, api_key_env: 'TEST_KEY_A' },
        { name: 'elsewhere', url: other.url, api_key_env: 'TEST_KEY_B', tier: 1 },
      ],
      env,
      GATEWAY_KEY,
    );
    const moved = await otherHost.client().messages.create(params('other host')).withResponse();
    assert.equal(moved.response.headers.get('x-gateway-upstream'), 'elsewhere', 'another host sees one attempt per call: free');
  });

  test('pass-through: the client key travels to whichever upstream answers, and its own 429 is passed on, not failed over', async () => {
    const primary = await mockUpstream();
    const secondary = await mockUpstream();
    const stack = await gateway([
      { name: 'primary', url: primary.url },
      { name: 'secondary', url: secondary.url, tier: 1 },
    ]);
    primary.setFaults({ status: 429, retryAfter: '7' });
    await assert.rejects(stack.client().messages.create(params('limited')), (err: unknown) => (err as { status?: number }).status === 429);
    assert.equal(secondary.stats().requests, 0);
    primary.setFaults({ status: 503 });
    await stack.client().messages.create(params('moved'));
    assert.equal(primary.stats().requests, 2, "one client's 429 does not rest a pass-through upstream for everyone");
    assert.equal(secondary.requests[0]?.headers.authorization, 'Bearer sk-ant-test-0123456789abcdef', "the client's own key");
  });
});
