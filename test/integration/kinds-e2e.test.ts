import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type Anthropic from '@anthropic-ai/sdk';
import { scrape, sum } from '../helpers/prom.js';
import { cloudMocksForSuite } from '../helpers/cloud-credentials.js';
import { gatewaysForSuite, startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';

/**
 * The official SDK pointed at the gateway gets identical Message objects and SSE event sequences
 * whether the gateway served it from the Anthropic mock, the Bedrock mock or the Vertex mock (the
 * gateway speaks to the latter two with real SigV4 signing and real Application Default
 * Credentials against the mocks' credential endpoints), and failover crosses kinds with no client error.
 */

const MODEL = 'claude-sonnet-5';
const GATEWAY_KEY = 'gw-key-kinds-0123456789';
const KEY_ID = 'AKIAMOCKE2E000000001';
const SECRET = 'mock/e2e/secret/for/tests/only/000000000';
const SIGNATURE = 'EqQBCkYIARgCIkD+/e2e-signature==';

const mocks = cloudMocksForSuite('kinds-e2e-', { accessKeyId: KEY_ID, secretAccessKey: SECRET }, 'e2e-subject-token');

function entries(): Record<'anthropic' | 'bedrock' | 'vertex', Record<string, unknown> & { name: string; url: string }> {
  return {
    anthropic: { name: 'anthropic', kind: 'anthropic', url: mocks.anthropic.url, api_key_env: 'E2E_ANTHROPIC_KEY' },
    bedrock: { name: 'bedrock', kind: 'bedrock', url: mocks.bedrock.url, region: 'us-east-1' },
    vertex: { name: 'vertex', kind: 'vertex', url: mocks.vertex.url, region: 'us-east5', project: 'test-project' },
  };
}

const ENV = { GATEWAY_API_KEYS: GATEWAY_KEY, E2E_ANTHROPIC_KEY: 'sk-ant-e2e-held-0123456789' };
const stacks: Record<'anthropic' | 'bedrock' | 'vertex', UpstreamsStack | undefined> = gatewaysForSuite(entries, ENV, GATEWAY_KEY);

function client(kind: 'anthropic' | 'bedrock' | 'vertex'): Anthropic {
  const stack = stacks[kind];
  assert.ok(stack !== undefined);
  return stack.client();
}

const TURN_TWO = {
  model: MODEL,
  max_tokens: 256,
  thinking: { type: 'enabled' as const, budget_tokens: 1024 },
  tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }],
  messages: [
    { role: 'user' as const, content: 'Weather in Paris?' },
    {
      role: 'assistant' as const,
      content: [
        { type: 'thinking' as const, thinking: 'I should call the tool.', signature: SIGNATURE },
        { type: 'tool_use' as const, id: 'toolu_e2e', name: 'get_weather', input: { city: 'Paris' } },
      ],
    },
    { role: 'user' as const, content: [{ type: 'tool_result' as const, tool_use_id: 'toolu_e2e', content: '18C and sunny' }] },
  ],
};

describe('the SDK sees the same answers from every kind', () => {
  test('plain Message objects are identical', async () => {
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: 'Describe a gateway' }] };
    const want = await client('anthropic').messages.create(params);
    for (const kind of ['bedrock', 'vertex'] as const) {
      const { data, response } = await client(kind).messages.create(params).withResponse();
      assert.deepEqual(data, want, kind);
      assert.equal(response.headers.get('x-gateway-upstream'), kind);
    }
  });

  test('SSE event sequences are identical, and finalMessage() agrees', async () => {
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: 'Stream about gateways' }] };
    const collect = async (kind: 'anthropic' | 'bedrock' | 'vertex'): Promise<{ events: unknown[]; final: unknown }> => {
      const stream = client(kind).messages.stream(params);
      const events: unknown[] = [];
      for await (const event of stream) events.push(event);
      return { events, final: await stream.finalMessage() };
    };
    const want = await collect('anthropic');
    assert.ok(want.events.length > 5);
    for (const kind of ['bedrock', 'vertex'] as const) assert.deepEqual(await collect(kind), want, kind);
  });

  test('a thinking round-trip with tool use: same answers, and the signature reaches each provider byte for byte', async () => {
    const want = await client('anthropic').messages.create(TURN_TWO);
    for (const [kind, mock] of [
      ['bedrock', mocks.bedrock],
      ['vertex', mocks.vertex],
    ] as const) {
      assert.deepEqual(await client(kind).messages.create(TURN_TWO), want, kind);
      const seen = mock.requests.at(-1)?.body ?? '';
      assert.ok(seen.includes(`{"type":"thinking","thinking":"I should call the tool.","signature":"${SIGNATURE}"}`), `${kind} got ${seen}`);
      assert.ok(!seen.includes('"model"'), `${kind}: the model moved to the URL`);
    }
    const wantStreamed = await client('anthropic').messages.stream(TURN_TWO).finalMessage();
    for (const kind of ['bedrock', 'vertex'] as const) assert.deepEqual(await client(kind).messages.stream(TURN_TWO).finalMessage(), wantStreamed, kind);
  });

  test('count_tokens is identical', async () => {
    const params = { model: MODEL, messages: [{ role: 'user' as const, content: 'How many tokens is this sentence?' }] };
    const want = await client('anthropic').messages.countTokens(params);
    assert.ok(want.input_tokens > 0);
    for (const kind of ['bedrock', 'vertex'] as const) assert.deepEqual(await client(kind).messages.countTokens(params), want, kind);
  });

  test('endpoints Bedrock and Vertex do not serve get a clear 404 naming why', async () => {
    for (const kind of ['bedrock', 'vertex'] as const) {
      await assert.rejects(client(kind).models.list(), (err: unknown) => {
        assert.equal((err as { status?: number }).status, 404, kind);
        assert.match((err as Error).message, /serves only POST \/v1\/messages/);
        return true;
      });
    }
  });
});

describe('Bedrock faults as the SDK sees them through the gateway', () => {
  test('a stream cut mid-frame ends with an error the SDK raises, after the events that arrived whole', async () => {
    // The Bedrock adapter forwards no client header (x-mock-* included): the fault is the mock's plan.
    mocks.bedrock.setFaults({ bedrockFault: 'cut-frame', count: 1 });
    const stream = client('bedrock').messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'cut me' }] });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const event of stream) seen.push(event.type);
      })(),
      (err: unknown) => err instanceof Error,
    );
    assert.equal(seen[0], 'message_start');
    assert.ok(!seen.includes('message_stop'));
  });

  test('usage from Bedrock answers is metered under the bedrock upstream', async () => {
    const stack = stacks.bedrock;
    assert.ok(stack !== undefined);
    await client('bedrock').messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'meter me' }] });
    await client('bedrock').messages.stream({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'meter my stream' }] }).finalMessage();
    const metrics = await scrape(stack.gateway.url);
    assert.ok(sum(metrics, 'claude_tokens_total', { upstream: 'bedrock', type: 'output' }) > 0);
    assert.ok(sum(metrics, 'claude_tokens_total', { upstream: 'bedrock', type: 'input' }) > 0);
  });
});

/**
 * A gateway over the three mocks, tier by tier in `order`, without gateway retries and with a breaker
 * that opens after four failures in eight calls.
 */
function tiered(order: readonly ('anthropic' | 'bedrock' | 'vertex')[]): Promise<UpstreamsStack> {
  const all = entries();
  return startUpstreamsGateway(
    order.map((kind, tier) => ({ ...all[kind], tier })),
    { ...ENV, UPSTREAM_RETRIES: '0', BREAKER_VOLUME_THRESHOLD: '4', BREAKER_ERROR_THRESHOLD: '50', BREAKER_WINDOW_MS: '60000', BREAKER_RESET_TIMEOUT_MS: '60000' },
    GATEWAY_KEY,
  );
}

describe('failover across kinds', () => {
  test('Bedrock credentials cannot be had (a profile that does not exist): the call moves to Anthropic, reason auth, no client error', async () => {
    const all = entries();
    const stack = await startUpstreamsGateway(
      [
        { ...all.bedrock, name: 'bedrock-no-profile', aws_profile: 'no-such-profile', tier: 0 },
        { ...all.anthropic, tier: 1 },
      ],
      { ...ENV, UPSTREAM_RETRIES: '0' },
      GATEWAY_KEY,
    );
    try {
      const before = mocks.bedrock.stats().requests;
      const { data, response } = await stack.client().messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'no credentials' }] }).withResponse();
      assert.equal(data.type, 'message');
      assert.equal(response.headers.get('x-gateway-upstream'), 'anthropic');
      assert.equal(mocks.bedrock.stats().requests, before, 'nothing was sent to Bedrock without credentials');
      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'upstream_failovers_total', { from: 'bedrock-no-profile', to: 'anthropic', reason: 'auth' }), 1);
      assert.ok(!stack.logs.text().includes(SECRET), 'no secret in the logs');
    } finally {
      await stack.close();
    }
  });

  test("Bedrock and Vertex deny the gateway's credentials the model (403): the call moves on to Anthropic, reason auth, no client error, no breaker opened", async () => {
    // A breaker that would open after four failures in eight: a 403 must not be one.
    const stack = await tiered(['bedrock', 'vertex', 'anthropic']);
    try {
      // AccessDeniedException from Bedrock, PERMISSION_DENIED from Vertex (the mocks' 403 answers).
      mocks.bedrock.setFaults({ status: 403 });
      mocks.vertex.setFaults({ status: 403 });
      const sdk = stack.client();
      for (let i = 0; i < 8; i++) {
        const { data, response } = await sdk.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: `denied ${i}` }] }).withResponse();
        assert.equal(data.type, 'message');
        assert.equal(response.headers.get('x-gateway-upstream'), 'anthropic');
      }
      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'upstream_failovers_total', { from: 'bedrock', to: 'vertex', reason: 'auth' }), 8);
      assert.equal(sum(samples, 'upstream_failovers_total', { from: 'vertex', to: 'anthropic', reason: 'auth' }), 8);
      // Each breaker is read (it exists: the calls went through it) and closed.
      const state = (breaker: string): number | undefined => samples.find((x) => x.name === 'circuit_breaker_state' && x.labels.breaker === breaker)?.value;
      assert.equal(state(`bedrock/${MODEL}`), 0, "Bedrock's breaker stays closed");
      assert.equal(state(`vertex/${MODEL}`), 0, "Vertex's breaker stays closed");
    } finally {
      mocks.bedrock.setFaults(null);
      mocks.vertex.setFaults(null);
      await stack.close();
    }
  });

  test('Anthropic answers 529: traffic moves to Bedrock; Bedrock throttles: traffic moves to Vertex; no client error', async () => {
    // The gateway's default retry budget: moves to another host never take from it.
    const stack = await tiered(['anthropic', 'bedrock', 'vertex']);
    try {
      const sdk = stack.client();
      const params = (i: number): Anthropic.MessageCreateParamsNonStreaming => ({ model: MODEL, max_tokens: 16, messages: [{ role: 'user' as const, content: `failover ${i}` }] });
      mocks.anthropic.setFaults({ status: 529 });
      // Waves of 4 concurrent calls.
      const wave = async (from: number): Promise<{ data: Anthropic.Message; response: Response }[]> => {
        const out: { data: Anthropic.Message; response: Response }[] = [];
        for (let w = 0; w < 3; w++) out.push(...(await Promise.all(Array.from({ length: 4 }, (_, i) => sdk.messages.create(params(from + w * 4 + i)).withResponse()))));
        return out;
      };
      const phase1 = await wave(0);
      for (const { data, response } of phase1) {
        assert.equal(data.type, 'message');
        assert.equal(response.headers.get('x-gateway-upstream'), 'bedrock');
      }
      mocks.bedrock.setFaults({ status: 429 });
      const phase2 = await wave(100);
      for (const { data, response } of phase2) {
        assert.equal(data.type, 'message');
        assert.equal(response.headers.get('x-gateway-upstream'), 'vertex');
      }
      const streamed = await sdk.messages.stream(params(999)).finalMessage();
      assert.equal(streamed.type, 'message');
      const metrics = await scrape(stack.gateway.url);
      assert.ok(sum(metrics, 'upstream_failovers_total', { from: 'anthropic', to: 'bedrock' }) >= 1);
      assert.ok(sum(metrics, 'upstream_failovers_total', { from: 'bedrock', to: 'vertex' }) >= 1);
      assert.ok(sum(metrics, 'claude_api_calls_total', { upstream: 'vertex' }) >= 12);
    } finally {
      mocks.anthropic.setFaults(null);
      mocks.bedrock.setFaults(null);
      await stack.close();
    }
  });
});
