import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { billPrompt, minCacheableTokens, PromptCache, promptBlocks, TTL_MS, type PromptBill } from '../../tools/mock-upstream/prompt-cache.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';

/** The mock's prompt cache (tools/mock-upstream/prompt-cache.ts): billed like the API's, per credential, with TTLs. */

const MODEL = 'claude-sonnet-5';
const EPHEMERAL = { type: 'ephemeral' } as const;
/** 4,400 characters: past the 1,024-token minimum alone (the mock's estimator: one token per 4 characters). */
const TOOL_TEXT = 't'.repeat(4_400);
const SYSTEM_TEXT = 's'.repeat(2_000);

function tokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** A fake clock the cache reads. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

interface Turn {
  tools?: unknown;
  system?: unknown;
  messages: unknown[];
}

/** Claude Code's shape: breakpoints on the last tool, the system prompt and the last message. */
function claudeCode(system: string, messages: string[], ttl?: '1h'): Turn {
  const control = ttl === undefined ? EPHEMERAL : { type: 'ephemeral', ttl };
  return {
    tools: [{ name: 'read', description: TOOL_TEXT, input_schema: { type: 'object' }, cache_control: control }],
    system: [{ type: 'text', text: system, cache_control: control }],
    messages: messages.map((text, i) => ({
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: [{ type: 'text', text, ...(i === messages.length - 1 ? { cache_control: EPHEMERAL } : {}) }],
    })),
  };
}

function bill(cache: PromptCache, turn: Turn, scope = 'key:a', model = MODEL): PromptBill {
  return billPrompt(promptBlocks(turn), model, scope, cache);
}

const toolTokens = tokens(JSON.stringify({ name: 'read', description: TOOL_TEXT, input_schema: { type: 'object' } }).length);

describe('the mock prompt cache', () => {
  test('the first call creates up to the last breakpoint, the rest is input; the same prefix is then read', () => {
    const cache = new PromptCache();
    const first = bill(cache, claudeCode(SYSTEM_TEXT, ['hello there']));
    assert.equal(first.cache_read_input_tokens, 0);
    assert.equal(first.cache_creation_input_tokens, first.cache_creation.ephemeral_5m_input_tokens);
    assert.ok(first.cache_creation_input_tokens >= toolTokens + tokens(SYSTEM_TEXT.length));
    const again = bill(cache, claudeCode(SYSTEM_TEXT, ['hello there']));
    assert.deepEqual(again, { ...first, cache_read_input_tokens: first.cache_creation_input_tokens, cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 } });
  });

  test('a prefix matches at each breakpoint: tools only, tools and system, the whole conversation', () => {
    const cache = new PromptCache();
    const whole = bill(cache, claudeCode(SYSTEM_TEXT, ['question one'])).cache_creation_input_tokens;
    // Another system prompt: only the tools' breakpoint matches.
    const otherSystem = bill(cache, claudeCode('x'.repeat(2_000), ['question one']));
    assert.equal(otherSystem.cache_read_input_tokens, toolTokens);
    assert.equal(otherSystem.cache_creation_input_tokens, whole - toolTokens);
    // Same tools and system, another question: tools and system are read, the message is created.
    const otherQuestion = bill(cache, claudeCode(SYSTEM_TEXT, ['question two']));
    const throughSystem = tokens(JSON.stringify({ name: 'read', description: TOOL_TEXT, input_schema: { type: 'object' } }).length + 1 + SYSTEM_TEXT.length);
    assert.equal(otherQuestion.cache_read_input_tokens, throughSystem);
    assert.equal(otherQuestion.cache_read_input_tokens + otherQuestion.cache_creation_input_tokens, whole);
    // A conversation that grew by a turn: the previous turn's last breakpoint is found (the API's look-back).
    const grown = bill(cache, claudeCode(SYSTEM_TEXT, ['question two', 'an answer', 'a follow-up']));
    assert.equal(grown.cache_read_input_tokens, whole);
    assert.equal(grown.cache_creation_input_tokens, tokens(JSON.stringify({ name: 'read', description: TOOL_TEXT, input_schema: { type: 'object' } }).length + 1 + SYSTEM_TEXT.length + 1 + 'question two\nan answer\na follow-up'.length) - whole);
  });

  test('a 5-minute entry expires 5 minutes after its last read; a read refreshes it', () => {
    const time = clock();
    const cache = new PromptCache(100, time.now);
    const turn = claudeCode(SYSTEM_TEXT, ['hello']);
    const created = bill(cache, turn).cache_creation_input_tokens;
    time.advance(TTL_MS['5m'] - 1);
    assert.equal(bill(cache, turn).cache_read_input_tokens, created, 'read just before expiry');
    time.advance(TTL_MS['5m'] - 1);
    assert.equal(bill(cache, turn).cache_read_input_tokens, created, 'the read refreshed it');
    time.advance(TTL_MS['5m']);
    const expired = bill(cache, turn);
    assert.equal(expired.cache_read_input_tokens, 0, 'expired: written again');
    assert.equal(expired.cache_creation_input_tokens, created);
  });

  test('ttl "1h" keeps a prefix for an hour and bills it as ephemeral_1h_input_tokens', () => {
    const time = clock();
    const cache = new PromptCache(100, time.now);
    const turn = claudeCode(SYSTEM_TEXT, ['hello'], '1h');
    const first = bill(cache, turn);
    const throughSystem = tokens(JSON.stringify({ name: 'read', description: TOOL_TEXT, input_schema: { type: 'object' } }).length + 1 + SYSTEM_TEXT.length);
    assert.equal(first.cache_creation.ephemeral_1h_input_tokens, throughSystem);
    assert.equal(first.cache_creation.ephemeral_5m_input_tokens, first.cache_creation_input_tokens - throughSystem, 'the last message has the default 5 minutes');
    time.advance(30 * 60_000);
    const later = bill(cache, claudeCode(SYSTEM_TEXT, ['another'], '1h'));
    assert.equal(later.cache_read_input_tokens, throughSystem, 'tools and system are still warm after 30 minutes');
    time.advance(TTL_MS['1h'] + 1);
    assert.equal(bill(cache, turn).cache_read_input_tokens, 0, 'gone an hour after the last read');
  });

  test('each credential has its own cache', () => {
    const cache = new PromptCache();
    const turn = claudeCode(SYSTEM_TEXT, ['hello']);
    const created = bill(cache, turn, 'key:a').cache_creation_input_tokens;
    assert.equal(bill(cache, turn, 'key:b').cache_read_input_tokens, 0, 'another key reads nothing');
    assert.equal(bill(cache, turn, 'bedrock:us-east-1').cache_read_input_tokens, 0);
    assert.equal(bill(cache, turn, 'key:a').cache_read_input_tokens, created);
    assert.equal(bill(cache, turn, 'key:a', 'claude-opus-5').cache_read_input_tokens, 0, 'and each model');
  });

  test('below the minimum cacheable length nothing is cached: everything is input', () => {
    const cache = new PromptCache();
    const short: Turn = { system: [{ type: 'text', text: 'short system prompt', cache_control: EPHEMERAL }], messages: [{ role: 'user', content: 'hi' }] };
    for (let i = 0; i < 2; i++) {
      const billed = bill(cache, short);
      assert.equal(billed.cache_creation_input_tokens + billed.cache_read_input_tokens, 0);
      assert.equal(billed.input_tokens, tokens('short system prompt\nhi'.length));
    }
    assert.equal(cache.size, 0);
    // 1,500 tokens: cacheable for Sonnet (1,024), not for Haiku (2,048).
    const medium: Turn = { system: [{ type: 'text', text: 'm'.repeat(6_000), cache_control: EPHEMERAL }], messages: [{ role: 'user', content: 'hi' }] };
    assert.equal(minCacheableTokens('claude-haiku-5-5'), 2048);
    assert.equal(bill(cache, medium, 'key:a', 'claude-haiku-5-5').cache_creation_input_tokens, 0);
    assert.equal(bill(cache, medium, 'key:a', MODEL).cache_creation_input_tokens, 1_500);
  });

  test('the cache is bounded: the least recently used prefix is evicted first', () => {
    const cache = new PromptCache(2);
    const turn = (n: number): Turn => ({ system: [{ type: 'text', text: `${n}`.repeat(5_000), cache_control: EPHEMERAL }], messages: [{ role: 'user', content: 'hi' }] });
    bill(cache, turn(1));
    bill(cache, turn(2));
    assert.ok(bill(cache, turn(1)).cache_read_input_tokens > 0, 'read: now the most recent');
    bill(cache, turn(3));
    assert.equal(cache.size, 2);
    assert.ok(bill(cache, turn(1)).cache_read_input_tokens > 0, 'kept');
    assert.equal(bill(cache, turn(2)).cache_read_input_tokens, 0, 'evicted');
  });

  test('over HTTP: per API key, more than 4 breakpoints is a 400, count_tokens adds up what is billed', async () => {
    const mock = await createMockUpstream();
    try {
      const send = (key: string, body: unknown, path = '/v1/messages'): Promise<Response> =>
        fetch(`${mock.url}${path}`, { method: 'POST', headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const body = { model: MODEL, max_tokens: 20, ...claudeCode(SYSTEM_TEXT, ['hello']) };
      type Usage = { usage: { input_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number } };
      const first = ((await (await send('sk-ant-key-one', body)).json()) as Usage).usage;
      const second = ((await (await send('sk-ant-key-one', body)).json()) as Usage).usage;
      const otherKey = ((await (await send('sk-ant-key-two', body)).json()) as Usage).usage;
      assert.equal(second.cache_read_input_tokens, first.cache_creation_input_tokens);
      assert.equal(otherKey.cache_read_input_tokens, 0);
      assert.equal(otherKey.cache_creation_input_tokens, first.cache_creation_input_tokens);
      const counted = (await (await send('sk-ant-key-one', body, '/v1/messages/count_tokens')).json()) as { input_tokens: number };
      assert.equal(counted.input_tokens, first.input_tokens + first.cache_creation_input_tokens);

      const five = { model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: Array.from({ length: 5 }, (_, i) => ({ type: 'text', text: `part ${i}`, cache_control: EPHEMERAL })) }] };
      const refused = await send('sk-ant-key-one', five);
      assert.equal(refused.status, 400);
      const error = (await refused.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(error.error.type, 'invalid_request_error');
      assert.match(error.error.message, /maximum of 4 blocks with cache_control/);
    } finally {
      await mock.close();
    }
  });
});
