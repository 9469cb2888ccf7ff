import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { deferred, until } from '../helpers/deferred.js';
import { MemoryLedger, PRINCIPAL_HEADER, principalsByHeader, testPrincipal } from '../helpers/governance.js';
import { startTestGateway, TEST_API_KEY } from '../helpers/stack.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';
import type { KeyLimits } from '../../src/governance/model.js';

const params = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'limits' }] };

async function withKey(limits: KeyLimits, run: (client: Anthropic, mock: Awaited<ReturnType<typeof createMockUpstream>>, hold: { gate: Promise<void> | undefined }) => Promise<void>): Promise<void> {
  const hold: { gate: Promise<void> | undefined } = { gate: undefined };
  const mock = await createMockUpstream({ onRequest: () => hold.gate });
  const ledger = new MemoryLedger();
  const alice = testPrincipal({ limits });
  const gateway = await startTestGateway({ UPSTREAM_URL: mock.url, COALESCE: 'false' }, undefined, { admission: { spend: ledger, ledger, principalOf: principalsByHeader({ alice }) } });
  try {
    await run(new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0, defaultHeaders: { [PRINCIPAL_HEADER]: 'alice' } }), mock, hold);
  } finally {
    await gateway.shutdown();
    await mock.close();
  }
}

async function limited(call: Promise<unknown>): Promise<InstanceType<typeof Anthropic.RateLimitError>> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Anthropic.RateLimitError, `expected a 429, got ${String(err)}`);
  assert.equal((err.error as { error: { type: string } }).error.type, 'rate_limit_error');
  assert.match(err.headers.get('retry-after') ?? '', /^\d+$/);
  return err;
}

test('requestsPerMinute: past it a 429 with retry-after, nothing sent upstream', async () => {
  await withKey({ requestsPerMinute: 2 }, async (client, mock) => {
    await client.messages.create(params);
    await client.messages.create(params);
    const err = await limited(client.messages.create(params));
    assert.match(err.message, /2 requests per minute/);
    assert.equal(mock.stats().requests, 2);
  });
});

test('maxConcurrent: a second call while the first is in progress gets a 429; after it ends, calls go through again', async () => {
  await withKey({ maxConcurrent: 1 }, async (client, mock, hold) => {
    const gate = deferred();
    hold.gate = gate.promise;
    const first = client.messages.create(params);
    await until(() => mock.stats().activeRequests === 1, 10_000, 'the first call held upstream');
    await limited(client.messages.create(params));
    hold.gate = undefined;
    gate.resolve();
    await first;
    await client.messages.create(params);
  });
});

test('tokensPerMinute: once the minute\'s billed tokens reach it, calls get a 429', async () => {
  await withKey({ tokensPerMinute: 5 }, async (client) => {
    await client.messages.create(params);
    const err = await limited(client.messages.create(params));
    assert.match(err.message, /5 tokens per minute/);
  });
});
