import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Gateway } from '../../src/server.js';
import { chunkFrame } from '../../tools/mock-upstream/provider-framing.js';
import { deferred, until, type Deferred } from '../helpers/deferred.js';
import { LAST_CHUNK, rawChunk, rawHead, rawUpstream, rawUpstreamForSuite, type RawUpstream } from '../helpers/raw-upstream.js';
import { redisForSuite } from '../helpers/redis-server.js';
import { eventually, metric, withPair } from '../helpers/scale-out.js';
import { sseEvent } from '../helpers/scripted-upstream.js';
import { startTestGateway, TEST_API_KEY } from '../helpers/stack.js';

/**
 * Issue 24, item 3: only an answer that ended as its framing says it must is ever reused (a
 * lingering answer, a cache entry, a relay another instance keeps). A hostile upstream writes raw
 * HTTP: SSE streams that end before `message_stop`, bodies cut mid-way (close-delimited, chunked
 * without the terminating chunk, short of their content-length), Bedrock event streams that end
 * before their messageStop. The first client gets what the upstream sent; the next identical
 * request must be a `leader` that reaches upstream again. Whole answers (the controls) are reused.
 */

const MESSAGE = { id: 'msg_raw_0001', type: 'message', role: 'assistant', model: 'claude-sonnet-5', content: [{ type: 'text', text: 'Hello there' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 7, output_tokens: 3 } };
const JSON_TEXT = JSON.stringify(MESSAGE);

/** An Anthropic event stream: every event, message_stop last. */
const EVENTS: [string, unknown][] = [
  ['message_start', { type: 'message_start', message: { ...MESSAGE, content: [], stop_reason: null, usage: { input_tokens: 7, output_tokens: 1 } } }],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello there' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }],
  ['message_stop', { type: 'message_stop' }],
];
const SSE_WHOLE = EVENTS.map(([name, data]) => sseEvent(name, data)).join('');
const SSE_NO_STOP = EVENTS.slice(0, -1).map(([name, data]) => sseEvent(name, data)).join('');

const SSE = { 'content-type': 'text/event-stream; charset=utf-8' };
const JSON_TYPE = { 'content-type': 'application/json' };
const CHUNKED = { 'transfer-encoding': 'chunked' };

interface Case {
  name: string;
  stream: boolean;
  /** The upstream's raw answer. */
  raw: string | Buffer;
  /** Whether the answer is whole: reused (true) or never (false). */
  whole: boolean;
}

/** Anthropic-kind answers, framed every way HTTP/1.1 allows, whole and broken. */
const CASES: Case[] = [
  { name: 'sse-chunked-whole', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_WHOLE).toString() + LAST_CHUNK, whole: true },

  { name: 'json-length-whole', stream: false, raw: rawHead(200, { ...JSON_TYPE, 'content-length': String(Buffer.byteLength(JSON_TEXT)) }) + JSON_TEXT, whole: true },
  { name: 'json-chunked-whole', stream: false, raw: rawHead(200, { ...JSON_TYPE, ...CHUNKED }) + rawChunk(JSON_TEXT).toString() + LAST_CHUNK, whole: true },
  // The stream's framing ended cleanly, its events did not: no message_stop.
  { name: 'sse-chunked-no-stop', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_NO_STOP).toString() + LAST_CHUNK, whole: false },
  { name: 'sse-length-no-stop', stream: true, raw: rawHead(200, { ...SSE, 'content-length': String(Buffer.byteLength(SSE_NO_STOP)) }) + SSE_NO_STOP, whole: false },
  { name: 'sse-close-no-stop', stream: true, raw: rawHead(200, SSE) + SSE_NO_STOP, whole: false },
  // message_stop's block never finished (no blank line after it), or another event began after it.
  { name: 'sse-chunked-stop-unfinished', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_WHOLE.slice(0, -1)).toString() + LAST_CHUNK, whole: false },
  { name: 'sse-chunked-after-stop', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_WHOLE + 'event: ping\n').toString() + LAST_CHUNK, whole: false },
  // Bodies cut mid-way.
  { name: 'sse-chunked-cut', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_NO_STOP).toString(), whole: false },
  { name: 'json-close-cut', stream: false, raw: rawHead(200, JSON_TYPE) + JSON_TEXT.slice(0, 60), whole: false },
  { name: 'json-chunked-cut', stream: false, raw: rawHead(200, { ...JSON_TYPE, ...CHUNKED }) + rawChunk(JSON_TEXT.slice(0, 60)).toString(), whole: false },
  { name: 'json-length-cut', stream: false, raw: rawHead(200, { ...JSON_TYPE, 'content-length': String(Buffer.byteLength(JSON_TEXT)) }) + JSON_TEXT.slice(0, 60), whole: false },
  // Only the closing connection ends these bodies: a cut cannot be told from an end, so they are
  // never reused, even when every byte arrived (the gateway's own framing rule, README).
  { name: 'json-close-whole', stream: false, raw: rawHead(200, JSON_TYPE) + JSON_TEXT, whole: false },
  { name: 'sse-close-stopped', stream: true, raw: rawHead(200, SSE) + SSE_WHOLE, whole: false },
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body did not end cleanly (the gateway cut it). */
  cut: boolean;
}

/** One POST /v1/messages over its own connection, read to its end whatever happens. */
async function post(url: string, body: unknown, key = TEST_API_KEY): Promise<Answer> {
  const done = deferred<Answer>();
  const req = request(`${url}/v1/messages`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' } }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    const finish = (): void => done.resolve({ status: res.statusCode ?? 0, headers: res.headers, text, cut: !res.complete });
    res.on('end', finish);
    res.on('error', finish);
    res.on('close', finish);
  });
  req.on('error', (err) => done.reject(err));
  req.end(JSON.stringify(body));
  return done.promise;
}

function bodyFor(name: string, stream: boolean): Record<string, unknown> {
  return { model: 'claude-sonnet-5', max_tokens: 16, stream, messages: [{ role: 'user', content: `case ${name}` }] };
}

/** The case a request is for, read from its body. */
function caseOf(body: string, cases: readonly Case[]): Case {
  const found = cases.find((c) => body.includes(`case ${c.name}"`));
  assert.ok(found !== undefined, `no case for ${body}`);
  return found;
}

async function gatewayFor(upstreamUrl: string, env: Record<string, string>): Promise<Gateway> {
  return startTestGateway({ UPSTREAM_URL: upstreamUrl, ...env });
}

/**
 * Sends each case twice, one after the other; the second is reused (`reusedAs`) exactly when the
 * case is whole. Every case is tried; the failures are reported together.
 */
async function twice(gw: Gateway, upstream: RawUpstream, cases: readonly Case[], reusedAs: 'follower' | 'cache', key?: string): Promise<void> {
  const wrong: string[] = [];
  for (const c of cases) {
    const before = upstream.requests.length;
    const first = await post(gw.url, bodyFor(c.name, c.stream), key);
    assert.equal(first.headers['x-gateway-coalesce-role'], 'leader', `${c.name}: the first request leads`);
    const second = await post(gw.url, bodyFor(c.name, c.stream), key);
    const calls = upstream.requests.length - before;
    const role = second.headers['x-gateway-coalesce-role'];
    if (c.whole) {
      if (role !== reusedAs || calls !== 1) wrong.push(`${c.name}: a whole answer must be reused (${reusedAs}, 1 upstream call); got ${String(role)}, ${calls}`);
      else assert.equal(second.text, first.text, `${c.name}: the same bytes`);
    } else if (role !== 'leader' || calls !== 2) {
      wrong.push(`${c.name}: an answer that did not end as its framing says must not be reused (leader, 2 upstream calls); got ${String(role)}, ${calls}`);
    }
  }
  assert.deepEqual(wrong, []);
}

describe('only complete answers are reused (anthropic upstream, raw HTTP)', () => {
  const upstream = rawUpstreamForSuite((req) => caseOf(req.body, CASES).raw);

  test('lingering answers (COALESCE_LINGER_MS): broken answers reach their own clients and nobody after them', async () => {
    // A window no test can outrun: a broken answer that lingered would certainly serve the repeat.
    const gw = await gatewayFor(upstream.url, { COALESCE_LINGER_MS: '60000', COALESCE_LINGER_CATCHUP_MS: '60000' });
    try {
      await twice(gw, upstream, CASES, 'follower');
      // What the first client of a broken answer got is what it got, as before.
      const cut = await post(gw.url, bodyFor('sse-chunked-no-stop', true));
      assert.equal(cut.status, 200);
      assert.ok(!cut.text.includes('message_stop'));
      const json = await post(gw.url, bodyFor('json-close-cut', false));
      assert.equal(json.text, JSON_TEXT.slice(0, 60));
    } finally {
      await gw.shutdown();
    }
  });

  test('the response cache (CACHE=on): broken answers are never stored', async () => {
    const gw = await gatewayFor(upstream.url, { CACHE: 'on', COALESCE_LINGER_MS: '0' });
    try {
      // Another tenant: the same upstream cases, fingerprints of their own.
      await twice(gw, upstream, CASES, 'cache', 'sk-ant-cache-tenant-0123456789');
    } finally {
      await gw.shutdown();
    }
  });
});

describe('only complete answers are reused (bedrock upstream, event stream)', () => {
  /** Bedrock's stream of the same events: one `chunk` frame per Anthropic event. */
  const frames = (events: [string, unknown][]): Buffer => Buffer.concat(events.map(([, data]) => chunkFrame(Buffer.from(JSON.stringify(data)))));
  const EVENT_STREAM = { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'req-raw-bedrock' };
  const whole = frames(EVENTS);
  const noStop = frames(EVENTS.slice(0, -1));
  const BEDROCK: Case[] = [
    { name: 'bedrock-length-whole', stream: true, raw: Buffer.concat([Buffer.from(rawHead(200, { ...EVENT_STREAM, 'content-length': String(whole.length) })), whole]), whole: true },
    { name: 'bedrock-chunked-whole', stream: true, raw: Buffer.concat([Buffer.from(rawHead(200, { ...EVENT_STREAM, ...CHUNKED })), rawChunk(whole), Buffer.from(LAST_CHUNK)]), whole: true },
    // Every frame is whole and the framing ended cleanly: the stream just stopped before messageStop.
    { name: 'bedrock-length-no-stop', stream: true, raw: Buffer.concat([Buffer.from(rawHead(200, { ...EVENT_STREAM, 'content-length': String(noStop.length) })), noStop]), whole: false },
    { name: 'bedrock-chunked-no-stop', stream: true, raw: Buffer.concat([Buffer.from(rawHead(200, { ...EVENT_STREAM, ...CHUNKED })), rawChunk(noStop), Buffer.from(LAST_CHUNK)]), whole: false },
    { name: 'bedrock-close-no-stop', stream: true, raw: Buffer.concat([Buffer.from(rawHead(200, EVENT_STREAM)), noStop]), whole: false },
  ];
  const GATEWAY_KEY = 'gw-key-reuse-0123456789';
  const upstream = rawUpstreamForSuite((req) => {
    assert.match(req.path, /^\/model\/[^/]+\/invoke-with-response-stream$/);
    return caseOf(req.body, BEDROCK).raw;
  });

  for (const [what, env, reusedAs] of [
    ['lingering answers', { COALESCE_LINGER_MS: '60000', COALESCE_LINGER_CATCHUP_MS: '60000' }, 'follower'],
    ['the response cache', { CACHE: 'on', COALESCE_LINGER_MS: '0' }, 'cache'],
  ] as const) {
    test(`${what}: a Bedrock stream that ended before its messageStop is not reused`, async () => {
      const upstreams = [{ name: 'bedrock', kind: 'bedrock', url: upstream.url, region: 'us-east-1', bearer_token_env: 'REUSE_BEDROCK_TOKEN' }];
      const gw = await startTestGateway({ UPSTREAMS: JSON.stringify(upstreams), GATEWAY_API_KEYS: GATEWAY_KEY, REUSE_BEDROCK_TOKEN: 'bedrock-api-key-reuse', ...env });
      try {
        await twice(gw, upstream, BEDROCK, reusedAs, GATEWAY_KEY);
      } finally {
        await gw.shutdown();
      }
    });
  }
});

describe('only complete answers are reused across instances (real Redis)', () => {
  const redis = redisForSuite();

  // Each configuration is its own tenant: no key (claim, stream, cache entry) of one run meets the other.
  for (const [what, reuse, tenant] of [
    ['lingering answers', { COALESCE_LINGER_MS: '60000', COALESCE_LINGER_CATCHUP_MS: '60000' }, 'sk-ant-relay-linger-0123456789'],
    ['the response cache and its Redis tier', { COALESCE_LINGER_MS: '0', CACHE: 'on' }, 'sk-ant-relay-cache-0123456789'],
  ] as const) {
    test(`${what}: a relayed answer that did not end whole is kept by neither instance`, async () => {
      // The first request of each case waits at the upstream until the test lets it answer.
      const gates = new Map<string, Deferred<void>>();
      const relayCases: Case[] = [
        { name: 'relay-sse-whole', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_WHOLE).toString() + LAST_CHUNK, whole: true },
        { name: 'relay-json-whole', stream: false, raw: rawHead(200, { ...JSON_TYPE, 'content-length': String(Buffer.byteLength(JSON_TEXT)) }) + JSON_TEXT, whole: true },
        { name: 'relay-sse-no-stop', stream: true, raw: rawHead(200, { ...SSE, ...CHUNKED }) + rawChunk(SSE_NO_STOP).toString() + LAST_CHUNK, whole: false },
        { name: 'relay-json-close-cut', stream: false, raw: rawHead(200, JSON_TYPE) + JSON_TEXT.slice(0, 60), whole: false },
      ];
      const upstream = await rawUpstream(async (req) => {
        const c = caseOf(req.body, relayCases);
        await gates.get(c.name)?.promise;
        return c.raw;
      });
      await withPair({ upstreamUrl: upstream.url, redisUrl: redis.url, env: { REDIS_RETRY_MS: '200', ...reuse }, close: () => upstream.close() }, async (a, b) => {
        for (const c of relayCases) {
          const gate = deferred();
          gates.set(c.name, gate);
          const before = upstream.requests.length;
          // A leads (its call waits at the upstream), B follows A's flight through Redis.
          const viaA = post(a.url, bodyFor(c.name, c.stream), tenant);
          await until(() => upstream.requests.length === before + 1, 5_000, `${c.name}: A to call upstream`);
          const viaB = post(b.url, bodyFor(c.name, c.stream), tenant);
          await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, `${c.name}: B to follow A's flight`);
          gate.resolve();
          const [fromA, fromB] = await Promise.all([viaA, viaB]);
          gates.delete(c.name);
          assert.equal(fromA.headers['x-gateway-coalesce-role'], 'leader');
          assert.equal(fromB.headers['x-gateway-coalesce-role'], 'follower', `${c.name}: B was on A's flight`);
          assert.equal(upstream.requests.length, before + 1, `${c.name}: one upstream call for both`);
          // Both instances kept what they may keep; the next identical request on each decides.
          await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 0, 5_000, `${c.name}: B to finish following`);
          // Each repeat arrives after the flight before it ended for Redis too (its claim released): one
          // that arrives while an instance still publishes may join that flight, which is coalescing.
          const released = (what: string): Promise<void> =>
            eventually(async () => (await metric(a.url, 'remote_flight_publishers')) === 0 && (await metric(b.url, 'remote_flight_publishers')) === 0, 5_000, `${c.name}: ${what}`);
          await released("A's claim released");
          const againB = await post(b.url, bodyFor(c.name, c.stream), tenant);
          await released("B's claim released");
          const againA = await post(a.url, bodyFor(c.name, c.stream), tenant);
          if (c.whole) {
            assert.notEqual(againB.headers['x-gateway-coalesce-role'], 'leader', `${c.name}: a whole relayed answer is reused on B`);
            assert.notEqual(againA.headers['x-gateway-coalesce-role'], 'leader', `${c.name}: and on A`);
            assert.equal(upstream.requests.length, before + 1);
          } else {
            assert.equal(againB.headers['x-gateway-coalesce-role'], 'leader', `${c.name}: B does not keep a relay of a broken answer`);
            assert.equal(againA.headers['x-gateway-coalesce-role'], 'leader', `${c.name}: A does not keep it either`);
            assert.equal(upstream.requests.length, before + 3, `${c.name}: both repeats reached upstream`);
          }
        }
      });
    });
  }
});
