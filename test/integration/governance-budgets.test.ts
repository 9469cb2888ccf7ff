import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { costEstimator } from '../../src/governance/cost-estimate.js';
import { deferred, until } from '../helpers/deferred.js';
import { MemoryLedger, PRINCIPAL_HEADER, principalsByHeader, testPrincipal } from '../helpers/governance.js';
import { scriptedUpstream, sseEvent } from '../helpers/scripted-upstream.js';
import { LogCapture, startStack, startTestGateway, TEST_API_KEY } from '../helpers/stack.js';
import { startRedis } from '../helpers/redis-server.js';
import { metric, SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';

const MODEL = 'claude-sonnet-4-5';
const params = { model: MODEL, max_tokens: 200, messages: [{ role: 'user' as const, content: 'Say hello to the budget.' }] };
const worst = costEstimator({}, new Map()).worstCase('messages', MODEL, Buffer.from(JSON.stringify(params)));

describe('budgets at the edge (one instance)', () => {
  test('a refused call: 403 permission_error the official SDK does not retry, naming the budget, its period and reset; nothing sent upstream', async () => {
    const ledger = new MemoryLedger();
    const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: Math.floor(worst.microUsd / 2) }] });
    const stack = await startStack({ gateway: { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } } });
    let seen = 0;
    stack.gateway.server.on('request', () => seen++);
    try {
      const client = stack.client({ maxRetries: 3, defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } });
      const err = await client.messages.create(params).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof Anthropic.PermissionDeniedError, `got ${String(err)}`);
      assert.equal(err.status, 403);
      const body = (err.error as { error: { type: string; message: string } }).error;
      assert.equal(body.type, 'permission_error');
      assert.match(body.message, /^Budget exceeded: the daily budget of key "alice-laptop" is \$0\.\d+ \(used or held: \$0\.00; this call may cost up to \$0\.\d+\); it resets at \d{4}-\d\d-\d\dT00:00:00\.000Z\.$/);
      assert.equal(seen, 1, 'the SDK did not retry');
      assert.equal(err.headers.get('x-gateway-budget-remaining-usd'), (Math.floor(worst.microUsd / 2) / 1e6).toFixed(6));
      assert.match(err.headers.get('x-gateway-budget-reset') ?? '', /T00:00:00\.000Z$/);
      assert.equal(stack.mock.stats().requests, 0, 'nothing reached upstream');
      assert.equal(stack.gateway.admission?.budgets.open, 0);
      // Calls without a principal (static keys, pass-through) are not governed.
      await stack.client().messages.create(params);
      assert.equal(stack.mock.stats().requests, 1);
    } finally {
      await stack.close();
    }
  });

  test('answers of a governed key carry the remaining budget; spend settles to the bill; ledger rows per call and per reuse', async () => {
    const ledger = new MemoryLedger();
    const budget = 20 * worst.microUsd;
    const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: budget }], teamBudgets: [{ period: 'month', tokens: 1_000_000 }] });
    const stack = await startStack({ env: { COALESCE_LINGER_MS: '60000' }, gateway: { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } } });
    try {
      const client = stack.client({ defaultHeaders: { [PRINCIPAL_HEADER]: 'alice', 'x-claude-code-session-id': 'session-123' } });
      const first = await client.messages.create(params).withResponse();
      assert.equal(first.response.headers.get('x-gateway-budget-remaining-usd'), (budget / 1e6).toFixed(6));
      assert.equal(first.response.headers.get('x-gateway-budget-remaining-tokens'), '1000000');
      assert.match(first.response.headers.get('x-gateway-budget-reset') ?? '', /^\d{4}-\d\d-\d\dT00:00:00\.000Z$/);
      // The identical request again: a lingering answer, no call of its own, no reservation; the key's last remaining amounts.
      const again = await client.messages.create(params).withResponse();
      assert.equal(again.response.headers.get('x-gateway-coalesce-role'), 'follower');
      assert.equal(stack.mock.stats().requests, 1);
      await until(() => ledger.rows.length === 2, 10_000, 'two ledger rows');
      const [call, reuse] = ledger.rows;
      const usage = stack.mock.stats().usage;
      assert.deepEqual(
        [call?.source, call?.keyId, call?.teamId, call?.userId, call?.inputTokens, call?.outputTokens, call?.claudeCodeSession, call?.status],
        ['upstream', 'key_alice', 'team_platform', 'alice', usage.input_tokens, usage.output_tokens, 'session-123', 200],
      );
      assert.ok((call?.costMicroUsd ?? 0) > 0 && (call?.costMicroUsd ?? 0) < worst.microUsd, 'billed, below the worst case');
      assert.deepEqual([reuse?.source, reuse?.costMicroUsd, reuse?.savedMicroUsd], ['lingering', 0, call?.costMicroUsd]);
      // The third call (a new prompt) sees the first call's bill, not its worst case.
      const third = await client.messages.create({ ...params, messages: [{ role: 'user', content: 'another' }] }).withResponse();
      assert.equal(third.response.headers.get('x-gateway-budget-remaining-usd'), ((budget - (call?.costMicroUsd ?? 0)) / 1e6).toFixed(6));
      assert.equal(stack.gateway.admission?.budgets.open, 0);
    } finally {
      await stack.close();
    }
  });

  test('an aborted stream is billed for what it used; the reservation ends', async () => {
    const sent = deferred();
    const upstream = await scriptedUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_aborted' });
      res.write(sseEvent('message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: MODEL, content: [], usage: { input_tokens: 1000, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } } }));
      res.write(sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'partial' } }));
      sent.resolve();
      // Never ends: the client goes away.
    });
    const ledger = new MemoryLedger();
    const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: 20 * worst.microUsd }] });
    const gateway = await startTestGateway({ UPSTREAM_URL: upstream.url }, undefined, { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } });
    try {
      const abort = new AbortController();
      const res = await fetch(`${gateway.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, [PRINCIPAL_HEADER]: 'alice' },
        body: JSON.stringify({ ...params, stream: true }),
        signal: abort.signal,
      });
      const reader = res.body?.getReader();
      await reader?.read();
      await sent.promise;
      abort.abort();
      await until(() => gateway.admission?.budgets.open === 0, 10_000, 'the reservation settled');
      await until(() => ledger.rows.length === 1, 10_000, 'the ledger row');
      const row = ledger.rows[0];
      // Sonnet: 1000 input x $3 + 1 output x $15 per million tokens.
      assert.deepEqual([row?.source, row?.inputTokens, row?.outputTokens, row?.costMicroUsd, row?.requestId], ['upstream', 1000, 1, 3015, 'req_aborted']);
      assert.deepEqual(await ledger.spendSince('key', 'key_alice', 0), { microUsd: 3015, tokens: 1001 });
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('a failed upstream call releases its reservation (nothing billed)', async () => {
    const mock = await createMockUpstream({ script: '500:100' });
    const ledger = new MemoryLedger();
    const budget = 2 * worst.microUsd;
    const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: budget }] });
    const gateway = await startTestGateway({ UPSTREAM_URL: mock.url }, undefined, { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } });
    try {
      const client = new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0, defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } });
      for (let i = 0; i < 5; i++) {
        const err = await client.messages.create(params).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof Anthropic.InternalServerError, `call ${i}: ${String(err)}`);
      }
      assert.equal(gateway.admission?.budgets.open, 0);
      // The budget fits two worst cases: had a failed call kept its hold, the third would have been refused (403).
      assert.ok(mock.stats().requests >= 1);
    } finally {
      await gateway.shutdown();
      await mock.close();
    }
  });
});

describe('BUDGET_FAIL_MODE with the budget counters (Redis) unreachable', () => {
  for (const mode of ['closed', 'open'] as const) {
    test(`${mode}: governed calls are ${mode === 'closed' ? 'refused with 503 overloaded_error' : 'admitted unchecked'}, counted, one log line`, async () => {
      const redis = await startRedis();
      const redisUrl = redis.url;
      await redis.stop();
      const mock = await createMockUpstream();
      const ledger = new MemoryLedger();
      const alice = testPrincipal({ keyBudgets: [{ period: 'day', microUsd: 100 * worst.microUsd }] });
      const logs = new LogCapture();
      const gateway = await startTestGateway({ UPSTREAM_URL: mock.url, REDIS_URL: redisUrl, TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, BUDGET_FAIL_MODE: mode }, logs, { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } });
      try {
        const client = new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0, defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } });
        for (let i = 0; i < 2; i++) {
          const result = await client.messages.create({ ...params, messages: [{ role: 'user', content: `call ${i}` }] }).then(() => 'answered', (e: unknown) => e);
          if (mode === 'open') assert.equal(result, 'answered');
          else {
            assert.ok(result instanceof Anthropic.APIError && result.status === 503, String(result));
            assert.equal((result.error as { error: { type: string } }).error.type, 'overloaded_error');
          }
        }
        assert.equal(mock.stats().requests, mode === 'open' ? 2 : 0);
        assert.equal(await metric(gateway.url, 'claude_gateway_budget_unavailable_total', { fail_mode: mode }), 2);
        assert.equal(logs.records().filter((r) => String(r.msg).startsWith('budgets cannot be checked')).length, 1);
        // Static keys and pass-through are not governed: never refused for it.
        await new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0 }).messages.create(params);
      } finally {
        await gateway.shutdown();
        await mock.close();
      }
    });
  }
});
