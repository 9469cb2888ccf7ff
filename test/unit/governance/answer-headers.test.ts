import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendBudgetHeaders, budgetHeaders, type Remaining } from '../../../src/governance/budgets.js';
import { appendAnswerHeaders, type GovernedRequest } from '../../../src/governance/govern.js';

/** The remaining-budget headers are appended to the head's own pairs (no array of their own per answer). */

const RESET = Date.UTC(2026, 11, 8);

function governed(reserved: Remaining | undefined, lastRemaining: Remaining | undefined): GovernedRequest {
  return { principal: undefined, mode: 'api', endpoint: 'messages', model: undefined, body: null, receivedAt: 0, session: undefined, reserved, lastRemaining };
}

test('appendBudgetHeaders: usd, tokens, reset after what the head already holds, as budgetHeaders makes them', () => {
  const remaining: Remaining = { microUsd: 1_234_567, tokens: 999_900, resetAt: RESET };
  const out = ['x-gateway-role', 'leader'];
  appendBudgetHeaders(out, remaining);
  assert.deepEqual(out, ['x-gateway-role', 'leader', 'x-gateway-budget-remaining-usd', '1.234567', 'x-gateway-budget-remaining-tokens', '999900', 'x-gateway-budget-reset', '2026-12-08T00:00:00.000Z']);
  assert.deepEqual(out.slice(2), budgetHeaders(remaining));
  // A unit without a budget has no header.
  const usdOnly: string[] = [];
  appendBudgetHeaders(usdOnly, { microUsd: 5, tokens: undefined, resetAt: RESET });
  assert.deepEqual(usdOnly, ['x-gateway-budget-remaining-usd', '0.000005', 'x-gateway-budget-reset', '2026-12-08T00:00:00.000Z']);
});

test("appendAnswerHeaders: the request's own reservation first, else the key's last values seen, else nothing", () => {
  const own: Remaining = { microUsd: 2_000_000, tokens: undefined, resetAt: RESET };
  const last: Remaining = { microUsd: undefined, tokens: 42, resetAt: RESET };
  const both: string[] = [];
  appendAnswerHeaders(governed(own, last), both);
  assert.deepEqual(both, budgetHeaders(own));
  const reused = ['x-gateway-role', 'follower'];
  appendAnswerHeaders(governed(undefined, last), reused);
  assert.deepEqual(reused, ['x-gateway-role', 'follower', ...budgetHeaders(last)]);
  // The key's last values are formatted once and repeated: appending twice gives the same pairs.
  const again: string[] = [];
  appendAnswerHeaders(governed(undefined, last), again);
  assert.deepEqual(again, reused.slice(2));
  const none = ['x-gateway-role', 'bypass'];
  appendAnswerHeaders(governed(undefined, undefined), none);
  assert.deepEqual(none, ['x-gateway-role', 'bypass']);
});
