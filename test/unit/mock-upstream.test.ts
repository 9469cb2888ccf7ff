import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createMockUpstream, MOCK_MODELS, type MockStats, type MockUpstream, type RecordedRequest } from '../../tools/mock-upstream/index.js';
import { deferred, until } from '../helpers/deferred.js';
import { startMockProcess, runMockUntilExit } from '../helpers/mock-process.js';

const KEY = 'sk-ant-test-mock-0123456789';
const HEADERS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const params = { model: 'claude-sonnet-5', max_tokens: 64, messages: [{ role: 'user', content: 'What is a reverse proxy?' }] };

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? '';
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6) ?? '{}';
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

interface MessageBody {
  id: string;
  type: string;
  role: string;
  model: string;
  content: { type: string; text: string }[];
  stop_reason: string;
  stop_sequence: null;
  usage: Record<string, unknown> & { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number };
}

interface ErrorBody {
  type: string;
  error: { type: string; message: string };
  request_id?: string;
}

function post(mock: MockUpstream, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${mock.url}${path}`, { method: 'POST', headers: { ...HEADERS, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function get(mock: MockUpstream, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${mock.url}${path}`, { headers: { ...HEADERS, ...headers } });
}

async function assertError(res: Response, status: number, type: string): Promise<ErrorBody> {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as ErrorBody;
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, type);
  assert.ok(body.error.message.length > 0);
  assert.equal(body.request_id, res.headers.get('request-id'));
  return body;
}

describe('mock upstream', () => {
  let mock: MockUpstream;
  before(async () => {
    mock = await createMockUpstream();
  });
  after(() => mock.close());

  describe('POST /v1/messages', () => {
    test('a plain message has the API shape, the API headers and deterministic usage', async () => {
      const res = await post(mock, '/v1/messages', params);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.match(res.headers.get('request-id') ?? '', /^req_mock_\d+$/);
      assert.ok(res.headers.get('anthropic-organization-id'));
      for (const kind of ['requests', 'tokens']) {
        for (const field of ['limit', 'remaining', 'reset']) assert.ok(res.headers.get(`anthropic-ratelimit-${kind}-${field}`), `${kind}-${field}`);
      }
      const message = (await res.json()) as MessageBody;
      assert.match(message.id, /^msg_mock_[0-9a-f]{24}$/);
      assert.equal(message.type, 'message');
      assert.equal(message.role, 'assistant');
      assert.equal(message.model, 'claude-sonnet-5');
      assert.equal(message.stop_reason, 'end_turn');
      assert.equal(message.stop_sequence, null);
      assert.equal(message.content.length, 1);
      assert.equal(message.content[0]?.type, 'text');
      const text = message.content[0].text;
      assert.ok(text.startsWith('Mock reply to: What is a reverse proxy?'), text);
      const words = text.split(' ').length;
      assert.equal(message.usage.output_tokens, words);
      assert.ok(words >= 5 + 9 && words <= 24 + 9, `${words} words`);
      const chars = 'What is a reverse proxy?'.length;
      assert.deepEqual(message.usage, {
        input_tokens: Math.ceil(chars / 4),
        output_tokens: words,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
        service_tier: 'standard',
      });

      const again = (await (await post(mock, '/v1/messages', params)).json()) as MessageBody;
      assert.deepEqual(again, message, 'the same body gets the same answer');
      const other = (await (await post(mock, '/v1/messages', { ...params, messages: [{ role: 'user', content: 'Something else' }] })).json()) as MessageBody;
      assert.notEqual(other.id, message.id);
    });

    test('max_tokens truncates the answer with stop_reason max_tokens', async () => {
      const message = (await (await post(mock, '/v1/messages', { ...params, max_tokens: 3 })).json()) as MessageBody;
      assert.equal(message.stop_reason, 'max_tokens');
      assert.equal(message.usage.output_tokens, 3);
      assert.equal(message.content[0]?.text, 'Mock reply to:');
    });

    test('a stream has the real event order, the same text, and cumulative usage in message_delta', async () => {
      const plain = (await (await post(mock, '/v1/messages', params)).json()) as MessageBody;
      const res = await post(mock, '/v1/messages', { ...params, stream: true });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.ok(res.headers.get('request-id'));
      const events = parseSse(await res.text());
      for (const e of events) assert.equal(e.data.type, e.event);
      const names = events.map((e) => e.event);
      const deltas = names.filter((n) => n === 'content_block_delta').length;
      assert.deepEqual(names, ['message_start', 'content_block_start', 'ping', ...Array<string>(deltas).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
      assert.equal(deltas, plain.usage.output_tokens, 'one delta per word');

      const start = events[0]?.data.message as MessageBody;
      assert.equal(start.id, plain.id);
      assert.deepEqual(start.content, []);
      assert.equal(start.usage.output_tokens, 1);
      assert.equal(start.usage.input_tokens, plain.usage.input_tokens);
      const text = events
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => (e.data.delta as { type: string; text: string }).text)
        .join('');
      assert.equal(text, plain.content[0]?.text);
      const delta = events.find((e) => e.event === 'message_delta')?.data;
      assert.deepEqual(delta?.delta, { stop_reason: 'end_turn', stop_sequence: null });
      assert.deepEqual(delta.usage, {
        input_tokens: plain.usage.input_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: plain.usage.output_tokens,
      });
    });

    test('cache_control marks a prefix: created the first time, read afterwards, never counted as input', async () => {
      // Long enough to cache: the API's minimum for Sonnet is 1,024 tokens (prompt-cache.ts).
      const system = 'You are a meticulous assistant. '.repeat(140);
      const cached = { ...params, system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'cache test one' }] };
      const prefixTokens = Math.ceil(system.length / 4);
      const first = (await (await post(mock, '/v1/messages', cached)).json()) as MessageBody;
      assert.equal(first.usage.cache_creation_input_tokens, prefixTokens);
      assert.equal(first.usage.cache_read_input_tokens, 0);
      assert.deepEqual(first.usage.cache_creation, { ephemeral_5m_input_tokens: prefixTokens, ephemeral_1h_input_tokens: 0 });
      assert.equal(first.usage.input_tokens, Math.ceil('cache test one'.length / 4));

      const second = (await (await post(mock, '/v1/messages', { ...cached, messages: [{ role: 'user', content: 'another question' }] })).json()) as MessageBody;
      assert.equal(second.usage.cache_creation_input_tokens, 0);
      assert.equal(second.usage.cache_read_input_tokens, prefixTokens);

      const streamed = parseSse(await (await post(mock, '/v1/messages', { ...cached, stream: true })).text());
      const startUsage = (streamed[0]?.data.message as MessageBody).usage;
      assert.equal(startUsage.cache_read_input_tokens, prefixTokens);
      const deltaUsage = streamed.find((e) => e.event === 'message_delta')?.data.usage as Record<string, number>;
      assert.equal(deltaUsage.cache_read_input_tokens, prefixTokens);

      const counted = (await (await post(mock, '/v1/messages/count_tokens', cached)).json()) as { input_tokens: number };
      assert.equal(counted.input_tokens, prefixTokens + first.usage.input_tokens, 'count_tokens includes the cached prefix');
    });

    test('invalid bodies are 400 invalid_request_error with a message naming the field', async () => {
      const cases: [unknown, RegExp][] = [
        ['{not json', /JSON/],
        [{ max_tokens: 10, messages: params.messages }, /model/],
        [{ ...params, max_tokens: 0 }, /max_tokens/],
        [{ ...params, max_tokens: 1.5 }, /max_tokens/],
        [{ ...params, messages: [] }, /messages/],
      ];
      for (const [body, message] of cases) {
        const error = await assertError(await post(mock, '/v1/messages', body), 400, 'invalid_request_error');
        assert.match(error.error.message, message);
      }
    });
  });

  describe('auth, routing and headers', () => {
    test('a missing or invalid key is 401; a Bearer token works; anthropic-version is required', async () => {
      await assertError(await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body: JSON.stringify(params) }), 401, 'authentication_error');
      await assertError(await post(mock, '/v1/messages', params, { 'x-api-key': 'sk-ant-invalid' }), 401, 'authentication_error');
      const bearer = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'anthropic-version': '2026-10-21' }, body: JSON.stringify(params) });
      assert.equal(bearer.status, 200);
      await bearer.arrayBuffer();
      const version = await assertError(await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': KEY }, body: JSON.stringify(params) }), 400, 'invalid_request_error');
      assert.match(version.error.message, /anthropic-version/);
    });

    test('an unknown path is 404 not_found_error; a wrong method is 405', async () => {
      await assertError(await get(mock, '/v1/nothing-here'), 404, 'not_found_error');
      const wrong = await get(mock, '/v1/messages');
      assert.equal(wrong.headers.get('allow'), 'POST');
      await assertError(wrong, 405, 'invalid_request_error');
      await assertError(await fetch(`${mock.url}/v1/models`, { method: 'DELETE', headers: HEADERS }), 405, 'invalid_request_error');
    });

    test('requests are recorded with path, query, headers and body; x-mock-echo-headers echoes them', async () => {
      const body = JSON.stringify({ ...params, messages: [{ role: 'user', content: 'record me' }] });
      const res = await fetch(`${mock.url}/v1/messages?beta=true`, { method: 'POST', headers: { ...HEADERS, 'anthropic-beta': 'a,b', 'x-mock-echo-headers': '1' }, body });
      const answer = (await res.json()) as MessageBody & { _received_headers: Record<string, string> };
      assert.equal(answer._received_headers['anthropic-beta'], 'a,b');
      const seen = mock.requests.at(-1);
      assert.equal(seen?.path, '/v1/messages?beta=true');
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body, body);
      assert.equal(seen.headers['anthropic-beta'], 'a,b');
      assert.equal(seen.id, res.headers.get('request-id'));
    });
  });

  describe('count_tokens and models', () => {
    test('count_tokens answers {input_tokens} with the token model', async () => {
      const body = { model: 'claude-haiku-5-5', system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Count these tokens please' }] }] };
      const res = await post(mock, '/v1/messages/count_tokens', body);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { input_tokens: Math.ceil(('Be brief.' + '\n' + 'Count these tokens please').length / 4) });
    });

    test('models list pages with limit, after_id and before_id; one model by id; 404 for an unknown id', async () => {
      const all = (await (await get(mock, '/v1/models')).json()) as { data: { type: string; id: string; display_name: string; created_at: string }[]; has_more: boolean; first_id: string; last_id: string };
      assert.deepEqual(all.data.map((m) => m.id), ['claude-opus-5', 'claude-sonnet-5', 'claude-haiku-5-5', 'claude-sonnet-4-5']);
      assert.equal(all.has_more, false);
      assert.equal(all.first_id, 'claude-opus-5');
      assert.equal(all.last_id, 'claude-sonnet-4-5');
      for (const m of all.data) assert.equal(m.type, 'model');

      const first = (await (await get(mock, '/v1/models?limit=2')).json()) as typeof all;
      assert.deepEqual(first.data.map((m) => m.id), ['claude-opus-5', 'claude-sonnet-5']);
      assert.equal(first.has_more, true);
      const second = (await (await get(mock, `/v1/models?limit=2&after_id=${first.last_id}`)).json()) as typeof all;
      assert.deepEqual(second.data.map((m) => m.id), ['claude-haiku-5-5', 'claude-sonnet-4-5']);
      assert.equal(second.has_more, false);
      const back = (await (await get(mock, `/v1/models?limit=1&before_id=${second.first_id}`)).json()) as typeof all;
      assert.deepEqual(back.data.map((m) => m.id), ['claude-sonnet-5']);
      assert.equal(back.has_more, true);
      await assertError(await get(mock, '/v1/models?limit=0'), 400, 'invalid_request_error');

      const one = await get(mock, '/v1/models/claude-opus-5');
      assert.deepEqual(await one.json(), MOCK_MODELS[0]);
      await assertError(await get(mock, '/v1/models/claude-nope'), 404, 'not_found_error');
    });
  });

  describe('message batches', () => {
    test('create, retrieve (ended, absolute results_url), results JSONL, list, cancel, delete', async () => {
      const create = await post(mock, '/v1/messages/batches', { requests: [{ custom_id: 'one', params }, { custom_id: 'two', params: { ...params, max_tokens: 2 } }] });
      assert.equal(create.status, 200);
      const batch = (await create.json()) as { id: string; type: string; processing_status: string; request_counts: Record<string, number>; results_url: string | null; ended_at: string | null };
      assert.match(batch.id, /^msgbatch_mock_/);
      assert.equal(batch.type, 'message_batch');
      assert.equal(batch.processing_status, 'in_progress');
      assert.deepEqual(batch.request_counts, { processing: 2, succeeded: 0, errored: 0, canceled: 0, expired: 0 });
      assert.equal(batch.results_url, null);

      const ended = (await (await get(mock, `/v1/messages/batches/${batch.id}`)).json()) as typeof batch;
      assert.equal(ended.processing_status, 'ended');
      assert.equal(ended.results_url, `${mock.url}/v1/messages/batches/${batch.id}/results`);
      assert.ok(ended.ended_at !== null);
      assert.deepEqual(ended.request_counts, { processing: 0, succeeded: 2, errored: 0, canceled: 0, expired: 0 });

      const results = await fetch(ended.results_url, { headers: HEADERS });
      assert.equal(results.headers.get('content-type'), 'application/binary');
      const lines = (await results.text()).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; result: { type: string; message: MessageBody } });
      assert.deepEqual(lines.map((l) => l.custom_id), ['one', 'two']);
      assert.equal(lines[0]?.result.type, 'succeeded');
      assert.equal(lines[1]?.result.message.stop_reason, 'max_tokens');

      const listed = (await (await get(mock, '/v1/messages/batches')).json()) as { data: { id: string }[]; has_more: boolean; first_id: string };
      assert.equal(listed.first_id, batch.id);

      const other = (await (await post(mock, '/v1/messages/batches', { requests: [{ custom_id: 'x', params }] })).json()) as typeof batch;
      await assertError(await fetch(`${mock.url}/v1/messages/batches/${other.id}`, { method: 'DELETE', headers: HEADERS }), 400, 'invalid_request_error');
      const canceling = (await (await post(mock, `/v1/messages/batches/${other.id}/cancel`, '')).json()) as typeof batch;
      assert.equal(canceling.processing_status, 'canceling');
      const canceled = (await (await get(mock, `/v1/messages/batches/${other.id}`)).json()) as typeof batch;
      assert.equal(canceled.request_counts.canceled, 1);
      const deleted = await fetch(`${mock.url}/v1/messages/batches/${other.id}`, { method: 'DELETE', headers: HEADERS });
      assert.deepEqual(await deleted.json(), { id: other.id, type: 'message_batch_deleted' });
      await assertError(await get(mock, `/v1/messages/batches/${other.id}`), 404, 'not_found_error');
      await assertError(await post(mock, '/v1/messages/batches', { requests: [{ custom_id: 'bad', params: { model: 'm' } }] }), 400, 'invalid_request_error');
    });

    test('results_url is built on publicUrl when one is given', async () => {
      const behind = await createMockUpstream({ publicUrl: 'http://gateway.example:8080/anthropic/' });
      try {
        const batch = (await (await post(behind, '/v1/messages/batches', { requests: [{ custom_id: 'a', params }] })).json()) as { id: string };
        const ended = (await (await get(behind, `/v1/messages/batches/${batch.id}`)).json()) as { results_url: string };
        assert.equal(ended.results_url, `http://gateway.example:8080/anthropic/v1/messages/batches/${batch.id}/results`);
      } finally {
        await behind.close();
      }
    });
  });

  describe('failure injection', () => {
    test('x-mock-status answers an Anthropic error of the matching type, with retry-after on 429/503/529', async () => {
      const overloaded = await post(mock, '/v1/messages', params, { 'x-mock-status': '529' });
      assert.equal(overloaded.headers.get('retry-after'), '1');
      await assertError(overloaded, 529, 'overloaded_error');
      const limited = await post(mock, '/v1/messages', params, { 'x-mock-status': '429', 'x-mock-retry-after': '3' });
      assert.equal(limited.headers.get('retry-after'), '3');
      await assertError(limited, 429, 'rate_limit_error');
      const failed = await post(mock, '/v1/messages', params, { 'x-mock-status': '500' });
      assert.equal(failed.headers.get('retry-after'), null);
      await assertError(failed, 500, 'api_error');
    });

    test('a global plan applies to the next `count` requests, set directly or through POST /_mock/faults', async () => {
      mock.setFaults({ status: 503, count: 2 });
      await assertError(await post(mock, '/v1/messages', params), 503, 'overloaded_error');
      await assertError(await get(mock, '/v1/models'), 503, 'overloaded_error');
      assert.equal((await post(mock, '/v1/messages', params)).status, 200);

      const set = await fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: JSON.stringify({ status: 429, retryAfter: '9' }) });
      assert.equal(set.status, 200);
      for (let i = 0; i < 2; i++) {
        const res = await post(mock, '/v1/messages', params);
        assert.equal(res.headers.get('retry-after'), '9');
        await assertError(res, 429, 'rate_limit_error');
      }
      assert.equal((await fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: 'null' })).status, 200);
      assert.equal((await post(mock, '/v1/messages', params)).status, 200);
      const invalid = await fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: JSON.stringify({ kind: 'explode' }) });
      assert.equal(invalid.status, 400);
    });

    test('reset: the connection is destroyed without a response, so fetch rejects', async () => {
      await assert.rejects(post(mock, '/v1/messages', params, { 'x-mock-fault': 'reset' }));
    });

    test('midstream-error: message_start and some deltas, then an overloaded_error event ends the stream', async () => {
      const res = await post(mock, '/v1/messages', { ...params, stream: true }, { 'x-mock-fault': 'midstream-error' });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text());
      const names = events.map((e) => e.event);
      assert.equal(names[0], 'message_start');
      assert.ok(names.includes('content_block_delta'));
      assert.equal(names.at(-1), 'error');
      assert.ok(!names.includes('message_delta') && !names.includes('message_stop'));
      assert.deepEqual(events.at(-1)?.data, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    });

    test('midstream-reset: a stream cut after a few events makes the body read reject', async () => {
      const res = await post(mock, '/v1/messages', { ...params, stream: true }, { 'x-mock-fault': 'midstream-reset' });
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
      const plain = await post(mock, '/v1/messages', params, { 'x-mock-fault': 'midstream-reset' });
      await assert.rejects(plain.text(), 'a JSON body cut in half');
    });

    test('gzip: the body is gzip-encoded whatever the client accepts, for JSON and for streams', async () => {
      const raw = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const req = httpRequest(`${mock.url}/v1/messages`, { method: 'POST', headers: { ...HEADERS, 'x-mock-fault': 'gzip', 'accept-encoding': 'identity' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(JSON.stringify(params));
      });
      assert.equal(raw.encoding, 'gzip');
      assert.equal((JSON.parse(gunzipSync(raw.body).toString('utf8')) as MessageBody).type, 'message');

      const streamed = await post(mock, '/v1/messages', { ...params, stream: true }, { 'x-mock-fault': 'gzip' });
      assert.equal(streamed.headers.get('content-encoding'), 'gzip');
      const events = parseSse(await streamed.text()); // fetch decodes gzip
      assert.equal(events.at(-1)?.event, 'message_stop');
    });

    test('stall-body: headers and the first event arrive, then nothing more', async () => {
      const controller = new AbortController();
      const res = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { ...HEADERS, 'x-mock-fault': 'stall-body' }, body: JSON.stringify({ ...params, stream: true }), signal: controller.signal });
      assert.equal(res.status, 200);
      const reader = res.body?.getReader();
      assert.ok(reader);
      const first = await reader.read();
      assert.match(Buffer.from(first.value ?? new Uint8Array()).toString('utf8'), /^event: message_start\n/);
      const next = reader.read();
      controller.abort();
      await assert.rejects(next);

      const plainController = new AbortController();
      const plain = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { ...HEADERS, 'x-mock-fault': 'stall-body' }, body: JSON.stringify(params), signal: plainController.signal });
      assert.equal(plain.status, 200);
      const plainReader = plain.body?.getReader();
      assert.ok(plainReader);
      const firstByte = await plainReader.read();
      assert.equal(Buffer.from(firstByte.value ?? new Uint8Array()).toString('utf8'), '{', 'a JSON answer stops after its first byte');
      const rest = plainReader.read();
      plainController.abort();
      await assert.rejects(rest);
    });

    test('stall: no headers are sent; close() releases the held connection', async () => {
      const stalling = await createMockUpstream();
      const held = fetch(`${stalling.url}/v1/messages`, { method: 'POST', headers: { ...HEADERS, 'x-mock-fault': 'stall' }, body: JSON.stringify(params) });
      let settled = false;
      held.then(
        () => (settled = true),
        () => (settled = true),
      );
      await until(() => stalling.requests.length === 1, 5_000, 'the stalled request to arrive');
      const later = await post(stalling, '/v1/messages', params);
      assert.equal(later.status, 200, 'the mock still answers others');
      await later.arrayBuffer();
      assert.equal(settled, false, 'the stalled request got no answer');
      await stalling.close();
      await assert.rejects(held);
    });
  });

  describe('stats, reset and the onRequest latch', () => {
    test('stats count API requests per path, billed usage (failed streams at their last reported usage) and connections', async () => {
      mock.reset();
      const zero: MockStats = (await (await fetch(`${mock.url}/_mock/stats`)).json()) as MockStats;
      assert.equal(zero.requests, 0);
      assert.deepEqual(zero.usage, { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });

      const plain = (await (await post(mock, '/v1/messages', params)).json()) as MessageBody;
      await (await post(mock, '/v1/messages', { ...params, stream: true })).text();
      await (await post(mock, '/v1/messages', { ...params, stream: true }, { 'x-mock-fault': 'midstream-error' })).text();
      await (await post(mock, '/v1/messages/count_tokens', params)).arrayBuffer();
      await new Promise<void>((resolve, reject) => {
        // A fresh connection (fetch may reuse pooled ones opened before the reset).
        const req = httpRequest(`${mock.url}/v1/models`, { headers: HEADERS, agent: false }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });

      const stats = mock.stats();
      assert.equal(stats.requests, 5);
      assert.deepEqual(stats.byPath, { 'POST /v1/messages': 3, 'POST /v1/messages/count_tokens': 1, 'GET /v1/models': 1 });
      assert.deepEqual(stats.usage, {
        input_tokens: 3 * plain.usage.input_tokens,
        output_tokens: 2 * plain.usage.output_tokens + 1,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      });
      assert.deepEqual(stats.usageByModel['claude-sonnet-5'], stats.usage);
      assert.ok(stats.connections >= 1);

      const listed = (await (await fetch(`${mock.url}/_mock/requests`)).json()) as Omit<RecordedRequest, 'body'>[];
      assert.equal(listed.length, 5);
      assert.ok(listed.every((r) => !('body' in r)));
      assert.equal(mock.stats().requests, 5, 'control endpoints are not counted');

      assert.equal((await fetch(`${mock.url}/_mock/reset`, { method: 'POST' })).status, 200);
      assert.equal(mock.stats().requests, 0);
      assert.equal(mock.requests.length, 0);
    });

    test('a client that leaves mid-stream is billed what message_start reported', async () => {
      mock.reset();
      const controller = new AbortController();
      const res = await fetch(`${mock.url}/v1/messages`, {
        method: 'POST',
        headers: { ...HEADERS, 'x-mock-event-interval-ms': '20' },
        body: JSON.stringify({ ...params, stream: true }),
        signal: controller.signal,
      });
      const reader = res.body?.getReader();
      assert.ok(reader);
      await reader.read();
      controller.abort();
      await until(() => mock.stats().usage.output_tokens > 0, 5_000, 'the abandoned stream to be billed');
      assert.equal(mock.stats().usage.output_tokens, 1);
    });

    test('onRequest holds a request until the test releases it', async () => {
      const gate = deferred();
      const arrived = deferred<RecordedRequest>();
      const held = await createMockUpstream({
        onRequest: async (req) => {
          arrived.resolve(req);
          await gate.promise;
        },
      });
      try {
        let answered = false;
        const pending = post(held, '/v1/messages', params).then((res) => {
          answered = true;
          return res;
        });
        const seen = await arrived.promise;
        assert.equal(seen.method, 'POST');
        assert.equal(seen.path, '/v1/messages');
        const stats = (await (await fetch(`${held.url}/_mock/stats`)).json()) as MockStats;
        assert.equal(stats.requests, 1, 'control endpoints answer while an API request is held');
        assert.equal(answered, false);
        gate.resolve();
        const res = await pending;
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('request-id'), seen.id);
      } finally {
        gate.resolve();
        await held.close();
      }
    });
  });
});

describe('mock upstream CLI', () => {
  test('starts on MOCK_PORT, logs its url as one JSON line, and exits 0 on SIGTERM', async () => {
    const mock = await startMockProcess({ MOCK_HOST: '127.0.0.1' });
    try {
      const { log } = mock;
      assert.match(log.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const models = await fetch(`${log.url}/v1/models`, { headers: HEADERS });
      assert.equal(models.status, 200);
      await models.arrayBuffer();
      assert.equal(await mock.stop(), 0);
    } finally {
      mock.kill();
    }
  });

  test('a bad value names its variable and exits 1', async () => {
    const { code, stderr } = await runMockUntilExit({ MOCK_LATENCY_MS: 'soon' });
    assert.equal(code, 1);
    assert.match(stderr, /MOCK_LATENCY_MS/);
  });
});
