import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { scanPromptBlocks } from '../../src/core/prompt-blocks.js';
import { CacheBreaks, sessionOf } from '../../src/observability/cache-breaks.js';
import { ModeLabels } from '../../src/observability/labels.js';
import { CellCounter } from '../../src/observability/metric-cells.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/core/pricing.js';
import { LogCapture } from '../helpers/log-capture.js';

const EPHEMERAL = { type: 'ephemeral' };

function tool(name: string, description = `the ${name} tool`): Record<string, unknown> {
  return { name, description, input_schema: { type: 'object', properties: { path: { type: 'string' } } } };
}

interface Conversation {
  model?: string;
  tools: Record<string, unknown>[];
  system: string;
  /** Texts of the turns, alternating user / assistant. */
  turns: string[];
}

/** A Claude-Code-shaped request: breakpoints on the last tool, the system block and the newest message. */
function body(c: Conversation): Buffer {
  const tools = c.tools.map((t, i) => (i === c.tools.length - 1 ? { ...t, cache_control: EPHEMERAL } : t));
  const messages = c.turns.map((text, i) => ({
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: [i === c.turns.length - 1 ? { type: 'text', text, cache_control: EPHEMERAL } : { type: 'text', text }],
  }));
  return Buffer.from(JSON.stringify({ model: c.model ?? 'claude-opus-5', max_tokens: 1024, stream: true, tools, system: [{ type: 'text', text: c.system, cache_control: EPHEMERAL }], messages }));
}

function detector(options?: { maxSessions: number; maxStoredBlocks: number; maxBlocks: number }): { breaks: CacheBreaks; counts: () => Map<string, number>; logs: LogCapture } {
  const counter = new CellCounter<'mode' | 'part'>({ name: 'claude_prompt_cache_breaks_total', help: 'breaks', labelNames: ['mode', 'part'], registers: [] });
  const seen = new Map<string, number>();
  const inc = counter.inc.bind(counter);
  counter.inc = (labels, value) => {
    value ??= 1;
    seen.set(`${labels.mode}/${labels.part}`, (seen.get(`${labels.mode}/${labels.part}`) ?? 0) + value);
    inc(labels, value);
  };
  const logs = new LogCapture();
  const breaks = new CacheBreaks(counter, new ModeLabels(undefined, 10), pino({ level: 'info' }, logs), options);
  return { breaks, counts: () => seen, logs };
}

function send(breaks: CacheBreaks, c: Conversation, session = 's-1'): ReturnType<CacheBreaks['inspect']> {
  return breaks.inspect('tenant-a', session, 'default', c.model ?? 'claude-opus-5', body(c));
}

function must<T>(value: T | undefined): T {
  assert.ok(value !== undefined, 'a break expected');
  return value;
}

const base = (): Conversation => ({ tools: [tool('read'), tool('write'), tool('bash'), tool('grep')], system: 'You are Claude Code.', turns: ['hello'] });

describe('prompt blocks (core/prompt-blocks.ts)', () => {
  test('one hash per tool, system block and message, in the API order whatever the key order; the last breakpoint found', () => {
    const bytes = Buffer.from('{"messages":[{"role":"user","content":"hi"}],"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"tools":[{"name":"a"},{"name":"b"}],"model":"m"}');
    const blocks = scanPromptBlocks(bytes, 100);
    assert.equal(blocks.hashes.length, 4);
    assert.equal(blocks.tools, 2);
    assert.equal(blocks.system, 1);
    assert.equal(blocks.lastBreakpoint, 2, 'the system block');
  });

  test('a moved cache_control marker changes no hash (first, middle, last, only member; any whitespace around it)', () => {
    const plain = scanPromptBlocks(Buffer.from('{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}'), 10);
    const variants = [
      '{"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}',
      '{"messages":[{"role":"user","content":[{"cache_control":{"type":"ephemeral"},"type":"text","text":"x"}]}]}',
      '{"messages":[{"role":"user","content":[{"type":"text","cache_control":{"type":"ephemeral"},"text":"x"}]}]}',
    ];
    for (const v of variants) {
      const marked = scanPromptBlocks(Buffer.from(v), 10);
      assert.equal(marked.lastBreakpoint, 0, v);
      assert.deepEqual([...marked.hashes], [...plain.hashes], v);
    }
    const only = scanPromptBlocks(Buffer.from('{"tools":[{"cache_control":{"type":"ephemeral"}}]}'), 10);
    assert.deepEqual([...only.hashes], [...scanPromptBlocks(Buffer.from('{"tools":[{}]}'), 10).hashes]);
  });

  test('a string content is the one text block it stands for (Claude Code sends the newest message as blocks, older ones as strings); a string system too', () => {
    const asString = scanPromptBlocks(Buffer.from('{"system":"be brief","messages":[{"role":"user","content":"hi \\"there\\""},{"role":"assistant","content":"ok"}]}'), 10);
    const asBlocks = scanPromptBlocks(
      Buffer.from('{"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi \\"there\\"","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":[{"type":"text","text":"ok"}]}]}'),
      10,
    );
    assert.deepEqual([...asString.hashes], [...asBlocks.hashes]);
    const other = scanPromptBlocks(Buffer.from('{"system":"be brief","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}'), 10);
    assert.notEqual(other.hashes[1], asString.hashes[1], 'a different text is a different block');
  });

  test('strings with escapes, brackets and commas inside do not confuse the scan; a string system is one block', () => {
    const blocks = scanPromptBlocks(Buffer.from('{"system":"a \\"quoted\\" }],{","messages":[{"role":"user","content":"[{,}]\\\\"},{"role":"assistant","content":"ok"}]}'), 10);
    assert.equal(blocks.system, 1);
    assert.equal(blocks.hashes.length, 3);
    assert.equal(blocks.lastBreakpoint, -1);
  });
});

describe('cache-break detection', () => {
  test('a normal growing conversation is no break (the breakpoint moves to the newest message each turn)', () => {
    const { breaks, counts } = detector();
    const c = base();
    for (let turn = 0; turn < 6; turn++) {
      assert.equal(send(breaks, c), undefined, `turn ${turn}`);
      c.turns.push(`answer ${turn}`, `question ${turn + 1}`);
    }
    assert.equal(counts().size, 0);
  });

  test('a changed tool definition mid-session is a `tools` break naming the tool index', () => {
    const { breaks, counts, logs } = detector();
    const c = base();
    send(breaks, c);
    c.turns.push('answer', 'next');
    c.tools[2] = tool('bash', 'a bash tool whose description changed');
    const found = must(send(breaks, c));
    assert.equal(found.part, 'tools');
    assert.equal(found.block, 'tools[2]');
    assert.deepEqual([...counts()], [['default/tools', 1]]);
    assert.ok(found.estimatedTokens > 0);
    breaks.report(found, { input: 3, output: 5, cache_creation: 1234, cache_read: 0 });
    const line = logs.records().find((r) => r.msg === 'prompt cache break: tools[2] changed') as { level: number; cacheBreak: Record<string, unknown> } | undefined;
    assert.ok(line, logs.text());
    assert.equal(line.level, 30, 'info');
    assert.equal(line.cacheBreak.block, 'tools[2]');
    assert.equal(line.cacheBreak.rewrittenTokens, 1234);
    assert.equal(line.cacheBreak.tokensFrom, 'usage');
    assert.equal(line.cacheBreak.session, 's-1');
  });

  test('a tool added or removed is a tools break at the first index that differs', () => {
    const { breaks } = detector();
    const c = base();
    send(breaks, c);
    c.tools.push(tool('web'));
    assert.equal(send(breaks, c)?.block, 'tools[4]', 'the added tool (the old last one only lost its marker: unchanged)');
    c.tools.pop();
    c.tools.pop();
    assert.equal(send(breaks, c)?.block, 'tools[3]', 'the removed tool: where the previous request had tools[3], this one has its system block');
  });

  test('a changed system prompt is a `system` break', () => {
    const { breaks } = detector();
    const c = base();
    send(breaks, c);
    c.system = 'You are Claude Code. Today is another day.';
    c.turns.push('answer', 'next');
    const found = must(send(breaks, c));
    assert.equal(found.part, 'system');
    assert.equal(found.block, 'system[0]');
  });

  test('an edited earlier message is a `messages` break naming it; an estimate when the answer had no usage', () => {
    const { breaks, logs } = detector();
    const c = base();
    c.turns.push('a1', 'q2', 'a2', 'q3');
    send(breaks, c);
    c.turns[3] = 'q2, edited';
    c.turns.push('a3', 'q4');
    const found = must(send(breaks, c));
    assert.equal(found.part, 'messages');
    assert.equal(found.block, 'messages[3]');
    breaks.report(found, undefined);
    const line = logs.records().at(-1) as { cacheBreak: Record<string, unknown> };
    assert.equal(line.cacheBreak.tokensFrom, 'estimate');
    assert.equal(line.cacheBreak.rewrittenTokens, found.estimatedTokens);
  });

  test('a change after the previous last breakpoint is no break (nothing cached there yet)', () => {
    const { breaks } = detector();
    const c = base();
    const bytes = (last: string): Buffer =>
      Buffer.from(JSON.stringify({ model: 'claude-opus-5', system: [{ type: 'text', text: 's', cache_control: EPHEMERAL }], messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: last }] }));
    assert.equal(breaks.inspect('t', 's', 'default', c.model, bytes('one')), undefined);
    assert.equal(breaks.inspect('t', 's', 'default', c.model, bytes('two')), undefined);
  });

  test('a model change is a `model` break; a side call on a model the session used before compares with that model', () => {
    const { breaks, counts } = detector();
    const c = base();
    send(breaks, c);
    c.turns.push('answer', 'next');
    const found = must(send(breaks, { ...c, model: 'claude-sonnet-5' }));
    assert.equal(found.part, 'model');
    assert.equal(found.previousModel, 'claude-opus-5');
    c.turns.push('answer 2', 'next 2');
    assert.equal(send(breaks, c), undefined, 'back on opus, whose prefix still matches');
    assert.deepEqual([...counts()], [['default/model', 1]]);
  });

  test('sessions are per tenant and per session id; the mode label is bounded', () => {
    const { breaks, counts } = detector();
    const c = base();
    send(breaks, c, 'one');
    c.system = 'changed';
    assert.equal(send(breaks, c, 'two'), undefined, 'another session has no history');
    assert.equal(breaks.inspect('tenant-b', 'one', 'default', 'claude-opus-5', body(c)), undefined, 'another tenant has no history');
    assert.equal(breaks.inspect('tenant-a', 'one', 'never-earned', 'claude-opus-5', body(c))?.mode, 'other');
    assert.deepEqual([...counts()], [['other/system', 1]]);
  });

  test('the sessions are an LRU bounded by count and by hashes kept', () => {
    const { breaks } = detector({ maxSessions: 3, maxStoredBlocks: 1_000, maxBlocks: 100 });
    const c = base();
    for (let i = 0; i < 10; i++) send(breaks, c, `s-${i}`);
    assert.equal(breaks.size, 3);
    send(breaks, c, 's-7');
    send(breaks, c, 's-10');
    c.system = 'changed';
    assert.equal(send(breaks, c, 's-8'), undefined, 's-8 was the least recently seen: evicted');
    assert.equal(send(breaks, c, 's-7')?.part, 'system', 's-7 was seen again: kept');
    const small = detector({ maxSessions: 100, maxStoredBlocks: 12, maxBlocks: 100 });
    for (let i = 0; i < 10; i++) send(small.breaks, base(), `s-${i}`);
    assert.ok(small.breaks.storedBlocks <= 12, `${small.breaks.storedBlocks} hashes kept`);
    assert.equal(small.breaks.size, 2, 'six hashes a session (four tools, the system block, one message)');
  });

  test('session ids: either header, a malformed one is not tracked', () => {
    assert.equal(sessionOf({ 'x-claude-code-session-id': 'abc-123' }), 'abc-123');
    assert.equal(sessionOf({ 'x-gateway-session': 'mine' }), 'mine');
    assert.equal(sessionOf({ 'x-gateway-session': 'bad value with spaces' }), undefined);
    assert.equal(sessionOf({ 'x-gateway-session': 'x'.repeat(200) }), undefined);
    assert.equal(sessionOf({}), undefined);
  });
});

describe('dollars saved by prompt caching', () => {
  test('cache reads at the input price minus their read price; nothing for unpriced models or no reads', () => {
    const prices = new PriceTable();
    assert.ok(Math.abs(prices.cacheSavingsUsd('claude-sonnet-5', 1_000_000) - 2.7) < 1e-9, 'sonnet: 3 - 0.3 USD per million');
    assert.equal(prices.cacheSavingsUsd('claude-sonnet-5', 0), 0);
    assert.equal(prices.cacheSavingsUsd('some-other-model', 1_000_000), 0);
  });

  test('recordBilled counts them in claude_prompt_cache_savings_usd_total', async () => {
    const metrics = new GatewayMetrics({ modes: undefined, maxModes: 10, maxModels: 10, prices: new PriceTable(), flightsInProgress: () => 0 });
    metrics.recordBilled('agent', 'claude-opus-5', 'primary', { input: 10, output: 5, cache_creation: 0, cache_read: 2_000_000 });
    metrics.recordBilled('agent', 'claude-opus-5', 'primary', { input: 10, output: 5, cache_creation: 100, cache_read: 0 });
    const text = await metrics.render();
    assert.match(text, /claude_prompt_cache_savings_usd_total\{mode="agent",model="claude-opus-5",upstream="primary"\} 9\b/, 'opus: (5 - 0.5) x 2');
  });
});
