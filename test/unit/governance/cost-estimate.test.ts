import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costEstimator, estimateInputTokens, IMAGE_TOKENS, maxTokensOf, ZERO_COST } from '../../../src/governance/cost-estimate.js';

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

test('input tokens: ceil(bytes / 2), plus an upper bound per image whatever its bytes', () => {
  assert.equal(estimateInputTokens(Buffer.alloc(7, 0x61)), 4);
  const text = body({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hello world' }] });
  const withImage = body({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }] });
  assert.equal(estimateInputTokens(text), Math.ceil(text.length / 2));
  assert.equal(estimateInputTokens(withImage), Math.ceil(withImage.length / 2) + IMAGE_TOKENS);
});

test('input estimate is never under a count of one token per 2 bytes for ordinary and dense text', () => {
  // A tokenizer-free check of the stated rule: English averages ~4 bytes per token, CJK 3 bytes per character (<= 1 token each).
  const english = 'The quick brown fox jumps over the lazy dog. '.repeat(100);
  const cjk = '東京都の天気は晴れです。'.repeat(100);
  assert.ok(estimateInputTokens(body({ messages: [{ role: 'user', content: english }] })) >= english.length / 4);
  assert.ok(estimateInputTokens(body({ messages: [{ role: 'user', content: cjk }] })) >= cjk.length);
});

test('max_tokens: the largest integer max_tokens key (the top-level one, or a larger nested one: conservative), else 0', () => {
  assert.equal(maxTokensOf(body({ max_tokens: 1024, messages: [{ max_tokens: 99 }] })), 1024);
  assert.equal(maxTokensOf(body({ max_tokens: 10, tools: [{ input_schema: { max_tokens: 5000 } }] })), 5000);
  assert.equal(maxTokensOf(body({ max_tokens: 10, messages: [{ role: 'user', content: '"max_tokens": 99999' }] })), 10, 'quoted text inside a string is escaped: not a key');
  assert.equal(maxTokensOf(Buffer.from('{"max_tokens" :\n 77}')), 77);
  assert.equal(maxTokensOf(body({ max_tokens: 1.5 })), 0);
  assert.equal(maxTokensOf(body({ messages: [] })), 0);
  assert.equal(maxTokensOf(body({ max_tokens: 'lots' })), 0);
  assert.equal(maxTokensOf(body({ max_tokens: -5 })), 0);
  assert.equal(maxTokensOf(Buffer.from('not json')), 0);
});

test('worst case: input at the highest of input/cache-write/cache-read, output at max_tokens, most expensive table', () => {
  const est = costEstimator({}, new Map([['dear', { sonnet: { input: 4, output: 20, cache_creation: 5, cache_read: 0.4 } }]]));
  const b = body({ model: 'claude-sonnet-4-5', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] });
  const input = estimateInputTokens(b);
  const cost = est.worstCase('messages', 'claude-sonnet-4-5', b);
  // Default sonnet: cache write 3.75 > input 3; upstream "dear": cache write 5, output 20: the highest wins per type.
  assert.deepEqual(cost, { microUsd: Math.ceil(input * 5 + 1000 * 20), tokens: input + 1000 });
});

test('an unknown model is priced at the highest known price (never free), before and after the call', () => {
  const est = costEstimator({}, new Map());
  const b = body({ model: 'mystery-1', max_tokens: 100, messages: [] });
  const input = estimateInputTokens(b);
  // Highest default prices: opus, output 25, cache write 6.25.
  assert.equal(est.worstCase('messages', 'mystery-1', b).microUsd, Math.ceil(input * 6.25 + 100 * 25));
  assert.equal(est.billedMicroUsd('mystery-1', undefined, { input: 10, output: 10, cache_creation: 0, cache_read: 0 }), Math.ceil(10 * 5 + 10 * 25));
  assert.equal(est.billedMicroUsd('claude-haiku-4-5', undefined, { input: 10, output: 10, cache_creation: 0, cache_read: 0 }), 60);
});

test('a model id naming an inherited property is an unknown model, never a NaN cost (NaN would fit every budget)', () => {
  const est = costEstimator({}, new Map());
  const usage = { input: 10, output: 10, cache_creation: 0, cache_read: 0 };
  for (const model of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
    const b = body({ model, max_tokens: 100, messages: [] });
    const input = estimateInputTokens(b);
    assert.equal(est.worstCase('messages', model, b).microUsd, Math.ceil(input * 6.25 + 100 * 25), model);
    assert.equal(est.billedMicroUsd(model, undefined, usage), Math.ceil(10 * 5 + 10 * 25), model);
  }
  // A family found in an id is remembered, and stays the same answer.
  assert.equal(est.billedMicroUsd('claude-haiku-4-5', undefined, usage), 60);
  assert.equal(est.billedMicroUsd('claude-haiku-4-5', undefined, usage), 60);
});

test('endpoints not billed by tokens reserve nothing', () => {
  const est = costEstimator({}, new Map());
  assert.equal(est.worstCase('count_tokens', 'claude-sonnet-4-5', body({ max_tokens: 5 })), ZERO_COST);
  assert.equal(est.worstCase('messages', 'claude-sonnet-4-5', null), ZERO_COST);
});
