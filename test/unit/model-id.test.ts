import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BREAKER_ACCOUNTING } from '../../src/pipeline/call/admit.js';
import { BEDROCK_CLIENT_HEADERS } from '../../src/upstream/kinds/bedrock.js';
import { VERTEX_CLIENT_HEADERS } from '../../src/upstream/kinds/vertex.js';
import { isModelId, MAX_MODEL_ID_CHARS } from '../../src/upstream/model-id.js';
import { REPO_ROOT } from '../helpers/k6.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

test('real model ids of every provider are model ids', () => {
  for (const id of [
    'claude-sonnet-5',
    'claude-3-5-sonnet-20241022',
    'claude-3-7-sonnet-latest',
    'anthropic.claude-sonnet-5-v1:0',
    'us.anthropic.claude-3-5-sonnet-20241022-v2:0',
    'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'claude-sonnet-5@20260801',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-5-v1:0',
    'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6',
    'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0',
    'arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:provisioned-model/abc123def456',
    'c'.repeat(MAX_MODEL_ID_CHARS),
  ]) {
    assert.ok(isModelId(id), id);
  }
});

test('what no provider accepts is not a model id', () => {
  for (const id of [
    '',
    '.',
    '..',
    '../x',
    'a/b',
    'claude/../x',
    '-claude',
    '_claude',
    ':claude',
    'claude sonnet',
    'claude%2F',
    'claude\u0000',
    'claude\n',
    '\ud800',
    'claude\udfff',
    'claudé',
    'c'.repeat(MAX_MODEL_ID_CHARS + 1),
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/..',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/.',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile//x',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/',
    'arn:aws:s3:::bucket/key',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/x?y',
  ]) {
    assert.ok(!isModelId(id), JSON.stringify(id));
  }
});

test('README mirrors the breaker-accounting table and the header lists', () => {
  const section = README.slice(README.indexOf('| how the call ended |'));
  const rows = section
    .split('\n')
    .slice(2)
    .filter((line) => line.trimStart().startsWith('|'))
    .map((line) => line.split('|')[2]?.trim());
  const counts = Object.values(BREAKER_ACCOUNTING).map((rule) => (rule.counts ? 'yes' : 'no'));
  assert.deepEqual(rows.slice(0, counts.length), counts, 'one README row per outcome, in the code table order');
  const vertexRow = README.split('\n').find((line) => line.startsWith('| `vertex` |')) ?? '';
  for (const name of VERTEX_CLIENT_HEADERS) assert.ok(vertexRow.split('|')[2]?.includes(`\`${name}\``), name);
  assert.equal(BEDROCK_CLIENT_HEADERS.size, 0, 'README says Bedrock gets no client header as a header');
});
