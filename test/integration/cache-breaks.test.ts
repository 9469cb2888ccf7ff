import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type Anthropic from '@anthropic-ai/sdk';
import { scrape, sum } from '../helpers/prom.js';
import { stackForSuite } from '../helpers/stack.js';
import { until } from '../helpers/deferred.js';

/**
 * Prompt-cache break detection through the real gateway: the official SDK sends a session header
 * (defaultHeaders), the metric is read from /metrics and the log line from the gateway's logs.
 */

const EPHEMERAL = { type: 'ephemeral' as const };

function tools(changedDescription?: string): Anthropic.Tool[] {
  return ['read', 'write', 'bash'].map((name, i) => ({
    name,
    description: i === 1 && changedDescription !== undefined ? changedDescription : `the ${name} tool`,
    input_schema: { type: 'object' as const, properties: { path: { type: 'string' } } },
    ...(i === 2 ? { cache_control: EPHEMERAL } : {}),
  }));
}

function turn(texts: string[], toolDefs: Anthropic.Tool[]): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: 'claude-sonnet-5',
    max_tokens: 32,
    tools: toolDefs,
    system: [{ type: 'text', text: 'You are a coding agent.', cache_control: EPHEMERAL }],
    messages: texts.map((text, i) => ({
      role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
      content: [{ type: 'text' as const, text, ...(i === texts.length - 1 ? { cache_control: EPHEMERAL } : {}) }],
    })),
  };
}

describe('prompt-cache breaks through the gateway', () => {
  const stack = stackForSuite();

  test('a growing session is no break; a changed tool definition is one `tools` break, logged with the tool index', async () => {
    const client = stack.client({ defaultHeaders: { 'x-claude-code-session-id': 'session-one' } });
    const breaks = async (): Promise<number> => sum(await scrape(stack.gateway.url), 'claude_prompt_cache_breaks_total');
    await client.messages.create(turn(['hello'], tools()));
    await client.messages.create(turn(['hello', 'hi there', 'list the files'], tools()));
    assert.equal(await breaks(), 0, 'the breakpoint moved to the newest message: no break');

    await client.messages.create(turn(['hello', 'hi there', 'list the files', 'a, b', 'thanks'], tools('writes a file (changed)')));
    const samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'claude_prompt_cache_breaks_total', { part: 'tools' }), 1);
    assert.equal(sum(samples, 'claude_prompt_cache_breaks_total'), 1);

    // The line is written once the call ended (with the answer's usage).
    const find = (): { level: string; cacheBreak: Record<string, unknown> } | undefined =>
      stack.logs.records().find((r) => r.msg === 'prompt cache break: tools[1] changed') as { level: string; cacheBreak: Record<string, unknown> } | undefined;
    await until(() => find() !== undefined, 5_000, 'the cache-break log line');
    const line = find();
    assert.ok(line);
    assert.equal(line.level, 'info');
    assert.equal(line.cacheBreak.part, 'tools');
    assert.equal(line.cacheBreak.block, 'tools[1]');
    assert.equal(line.cacheBreak.session, 'session-one');
    assert.equal(line.cacheBreak.tokensFrom, 'usage');
    assert.equal(typeof line.cacheBreak.rewrittenTokens, 'number');

    // Another session, same change: no history there, no break.
    const other = stack.client({ defaultHeaders: { 'x-gateway-session': 'session-two' } });
    await other.messages.create(turn(['hello'], tools('writes a file (changed)')));
    assert.equal(await breaks(), 1);
  });
});
