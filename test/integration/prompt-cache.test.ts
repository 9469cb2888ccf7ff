import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../helpers/stack.js';

/** Prompt caching through the gateway: the mock caches like the API (tools/mock-upstream/prompt-cache.ts). */

const MODEL = 'claude-sonnet-5';
/** About 2,000 tokens: past the 1,024-token minimum. */
const SYSTEM = 'You are a careful assistant working on a large code base. '.repeat(140);

describe('prompt caching', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  test('through the gateway with the official SDK, a second call with the same cached prefix reads it from the cache', async () => {
    const stack = await startStack();
    cleanup.push(() => stack.close());
    const client = stack.client();
    const ask = (question: string) =>
      client.messages.create({
        model: MODEL,
        max_tokens: 20,
        system: [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: question }],
      });
    const first = await ask('first question');
    const prefixTokens = Math.ceil(SYSTEM.length / 4);
    assert.equal(first.usage.cache_creation_input_tokens, prefixTokens);
    assert.equal(first.usage.cache_read_input_tokens, 0);
    const second = await ask('second question');
    assert.equal(second.usage.cache_read_input_tokens, prefixTokens, 'the prefix is read from the cache');
    assert.equal(second.usage.cache_creation_input_tokens, 0);
    assert.equal(second.usage.input_tokens, Math.ceil('second question'.length / 4));
  });
});
