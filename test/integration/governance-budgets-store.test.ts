import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { adminClient } from '../helpers/admin-api.js';
import { eventually } from '../helpers/deferred.js';
import { startStack } from '../helpers/stack.js';

/** Budgets and the ledger over the real store (embedded PostgreSQL): keys issued by the admin API. */
const ADMIN_KEY = 'admin-key-0123456789abcdef-0123456789abcdef';
const params = { model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'budgeted' }] };

test('a database key with a budget: over it, 403 naming the key\'s budget; within it, answered with the remaining-budget headers and written to the ledger', async () => {
  const stack = await startStack({
    env: { ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789', ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GOVERNANCE_POLL_MS: '100', COALESCE: 'off' },
  });
  try {
    const admin = adminClient((stack.gateway.admin as { url: string }).url, ADMIN_KEY);
    const team = await admin.createTeam('budgeted-team');
    const poor = await admin.createKey(team.id, { name: 'poor-key', budgets: [{ period: 'day', usd: 0.0001 }] });
    const rich = await admin.createKey(team.id, { name: 'rich-key', budgets: [{ period: 'day', usd: 10 }] });
    const sdk = (apiKey: string) => new Anthropic({ apiKey, baseURL: stack.gateway.url, maxRetries: 2 });
    await eventually(async () => (await sdk(rich.secret).messages.create(params).then(() => true, () => false)), 5_000, 'the new keys to be known');
    const before = stack.mock.stats().requests;
    const err = await sdk(poor.secret).messages.create(params).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Anthropic.PermissionDeniedError, String(err));
    assert.match((err.error as { error: { message: string } }).error.message, /daily budget of key "poor-key"/);
    assert.equal(stack.mock.stats().requests, before, 'not sent, not retried');
    const ok = await sdk(rich.secret).messages.create({ ...params, messages: [{ role: 'user', content: 'again' }] }).withResponse();
    assert.match(ok.response.headers.get('x-gateway-budget-remaining-usd') ?? '', /^9\.9\d+$/);
    await eventually(async () => {
      const spend = await admin.call('GET', '/admin/spend?groupBy=key');
      return JSON.stringify(spend.body).includes(rich.key.id);
    }, 10_000, 'the ledger rows in the store');
  } finally {
    await stack.close();
  }
});
