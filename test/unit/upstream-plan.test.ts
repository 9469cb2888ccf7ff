import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { UpstreamClient } from '../../src/upstream/client.js';
import { AnthropicAdapter } from '../../src/upstream/kinds/anthropic.js';
import type { UpstreamAdapter } from '../../src/upstream/kinds/kind.js';
import type { UpstreamTarget } from '../../src/upstream/targets.js';
import { Upstream, UpstreamSet, type Plannable } from '../../src/upstream/upstreams.js';
import { firstEventName, peekFirstEvent } from '../../src/pipeline/call/first-event.js';
import { reportedHeadroom, restMs } from '../../src/upstream/headroom.js';

/** A target of any kind, with what a test leaves out filled in (the planner reads no kind-specific field). */
function target(name: string, extra: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    name, kind: 'anthropic', origin: 'http://127.0.0.1:9', pathPrefix: '', tier: 0, weight: 1, apiKey: 'sk-held', apiKeyEnv: 'K',
    models: undefined, region: undefined, project: undefined, awsProfile: undefined, bearerToken: undefined, http2: undefined, connections: undefined,
    pricing: undefined, holdsCredentials: true, ...extra,
  } as UpstreamTarget;
}

// The planner never touches the pool: a stand-in that fails loudly if it does.
const client = new Proxy({}, { get: () => { throw new Error('the planner must not use the client'); } }) as unknown as UpstreamClient;
function upstream(name: string, extra: Partial<UpstreamTarget> = {}, adapter: UpstreamAdapter = new AnthropicAdapter('sk-held')): Upstream {
  return new Upstream(target(name, extra), client, adapter);
}
const messages: Plannable = { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers: [], body: null, model: 'claude-sonnet-5' };
const names = (list: readonly Upstream[]): string[] => list.map((u) => u.name);

/** A deterministic "random" sequence. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

describe('upstream plan', () => {
  test('tiers in order; within a tier by weight (weighted random order)', () => {
    const set = new UpstreamSet([upstream('a', { weight: 1 }), upstream('b', { weight: 3 }), upstream('backup', { tier: 1 })], sequence(0.5));
    // total weight 4: 0.5 x 4 = 2 falls in b's share [1, 4).
    assert.deepEqual(names(set.plan(messages).candidates), ['b', 'a', 'backup']);
    const low = new UpstreamSet([upstream('a', { weight: 1 }), upstream('b', { weight: 3 }), upstream('backup', { tier: 1 })], sequence(0.1));
    assert.deepEqual(names(low.plan(messages).candidates), ['a', 'b', 'backup']);
  });

  test('headroom scales the weight; a key resting after a 429 goes after every key that is not', () => {
    const a = upstream('a');
    const b = upstream('b');
    const set = new UpstreamSet([a, b, upstream('backup', { tier: 1 })], sequence(0.6));
    a.note(200, ['anthropic-ratelimit-requests-limit', '100', 'anthropic-ratelimit-requests-remaining', '10']);
    // weights: a 1 x 0.1, b 1 x 1 -> 0.6 x 1.1 = 0.66 falls in b's share.
    assert.deepEqual(names(set.plan(messages).candidates), ['b', 'a', 'backup']);
    b.note(429, ['retry-after', '30']);
    assert.deepEqual(names(set.plan(messages).candidates), ['a', 'backup', 'b'], 'b rests: last, after the next tier');
    assert.deepEqual(names(set.plan(messages, Date.now() + 31_000).candidates), ['b', 'a', 'backup'], 'rested no more');
  });

  test('pass-through upstreams never rest or shift on what one client was told', () => {
    const a = upstream('a', { holdsCredentials: false, apiKey: undefined });
    a.note(429, ['retry-after', '30']);
    assert.equal(a.headroom.resting(), false);
  });

  test('stateful endpoints keep configuration order within a tier', () => {
    const set = new UpstreamSet([upstream('a', { weight: 1 }), upstream('b', { weight: 1000 })], sequence(0.99));
    const batch: Plannable = { ...messages, path: '/v1/messages/batches', endpoint: 'batches', model: undefined };
    assert.deepEqual(names(set.plan(batch).candidates), ['a', 'b']);
  });

  test('model maps and kinds decide who may serve; with nobody, a reason', () => {
    const refusesFiles: UpstreamAdapter = { kind: 'bedrock', refuses: (req) => (req.endpoint === 'messages' ? undefined : `bedrock upstreams do not serve ${req.path}`), prepare: () => Promise.reject(new Error('unused')) };
    const set = new UpstreamSet([upstream('mapped', { models: new Map([['claude-haiku-5-5', 'x']]) }), upstream('bedrock', { kind: 'bedrock' }, refusesFiles)]);
    assert.deepEqual(names(set.plan(messages).candidates), ['bedrock']);
    assert.equal(set.all[0]?.modelFor('claude-haiku-5-5'), 'x');
    const files: Plannable = { ...messages, path: '/v1/files', endpoint: 'files', model: undefined };
    assert.deepEqual(names(set.plan(files).candidates), ['mapped']);
    const unknown = set.plan({ ...messages, path: '/v1/files', endpoint: 'files', model: 'nope' });
    assert.deepEqual(unknown.candidates, []);
    assert.match(unknown.refusal ?? '', /not served|do not serve/);
  });
});

describe('rate-limit headers', () => {
  test('headroom is the smallest reported remaining/limit; rest is retry-after, else the soonest reset, else 1 s', () => {
    assert.equal(reportedHeadroom(['anthropic-ratelimit-requests-limit', '50', 'anthropic-ratelimit-requests-remaining', '25', 'anthropic-ratelimit-tokens-limit', '1000', 'anthropic-ratelimit-tokens-remaining', '100']), 0.1);
    assert.equal(reportedHeadroom(['content-type', 'application/json']), undefined);
    const now = Date.parse('2026-11-23T00:00:00Z');
    assert.equal(restMs(['retry-after', '7'], now, 60_000), 7_000);
    assert.equal(restMs(['anthropic-ratelimit-tokens-reset', '2026-11-23T00:00:05Z'], now, 60_000), 5_000);
    assert.equal(restMs([], now, 60_000), 1_000);
    assert.equal(restMs(['retry-after', '3600'], now, 60_000), 60_000, 'bounded');
  });
});

describe('first stream event', () => {
  test('names the first event, across chunk boundaries and line endings', async () => {
    assert.equal(firstEventName(Buffer.from('event: error\ndata: {}\n\n')), 'error');
    assert.equal(firstEventName(Buffer.from('event: message_start\r\ndata: {}\r\n\r\nevent: error\n')), 'message_start');
    assert.equal(firstEventName(Buffer.from('event: err')), undefined);
    const text = 'event: error\ndata: {"type":"error"}\n\nevent: message_stop\ndata: {}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const peeked = await peekFirstEvent(Readable.from([Buffer.from(text.slice(0, cut)), Buffer.from(text.slice(cut))]));
      assert.equal(peeked.error, true, `cut at ${cut}`);
      let replayed = '';
      for await (const chunk of peeked.body) replayed += String(chunk);
      assert.equal(replayed, text, 'every byte replayed, in order');
    }
  });

  test('a first event larger than the bound is not taken as an error; an early end replays what came', async () => {
    const big = await peekFirstEvent(Readable.from([Buffer.alloc(70_000, 'a'), Buffer.from('\n\n')]), 64 * 1024);
    assert.equal(big.error, false);
    const short = await peekFirstEvent(Readable.from([Buffer.from('event: ping')]));
    assert.equal(short.error, false);
    let replayed = '';
    for await (const chunk of short.body) replayed += String(chunk);
    assert.equal(replayed, 'event: ping');
  });
});
