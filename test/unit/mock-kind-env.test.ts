import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/k6.js';

/** `npm run mock` with a bad MOCK_KIND stops at start-up with a message naming the variable. */
test('MOCK_KIND must name a kind; a bad value names the variable and exits 1', { timeout: 20_000 }, async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/tools/mock-upstream/main.js')], { env: { ...process.env, MOCK_PORT: '0', MOCK_KIND: 'azure' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 1);
  assert.match(stderr, /MOCK_KIND must be one of anthropic\|bedrock\|vertex/);
});

test('MOCK_BEDROCK_KEYS must be ID:SECRET pairs', { timeout: 20_000 }, async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/tools/mock-upstream/main.js')], { env: { ...process.env, MOCK_PORT: '0', MOCK_KIND: 'bedrock', MOCK_BEDROCK_KEYS: 'no-colon' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 1);
  assert.match(stderr, /MOCK_BEDROCK_KEYS/);
});
