import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runMockUntilExit } from '../helpers/mock-process.js';

/** `npm run mock` with a bad MOCK_KIND stops at start-up with a message naming the variable. */
test('MOCK_KIND must name a kind; a bad value names the variable and exits 1', { timeout: 20_000 }, async () => {
  const { code, stderr } = await runMockUntilExit({ MOCK_KIND: 'azure' });
  assert.equal(code, 1);
  assert.match(stderr, /MOCK_KIND must be one of anthropic\|bedrock\|vertex/);
});

test('MOCK_BEDROCK_KEYS must be ID:SECRET pairs', { timeout: 20_000 }, async () => {
  const { code, stderr } = await runMockUntilExit({ MOCK_KIND: 'bedrock', MOCK_BEDROCK_KEYS: 'no-colon' });
  assert.equal(code, 1);
  assert.match(stderr, /MOCK_BEDROCK_KEYS/);
});
