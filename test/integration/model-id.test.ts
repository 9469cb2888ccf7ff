import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { scrape } from '../helpers/prom.js';
import { cloudMocksForSuite } from '../helpers/cloud-credentials.js';
import { gatewaysForSuite, type UpstreamsStack } from '../helpers/upstreams-stack.js';

/**
 * The model id is checked before it is used anywhere (issue 24, item 4): what no provider accepts as
 * a model id gets 400 invalid_request_error from the gateway, no upstream sees it, and no breaker
 * counts it, whatever the upstream kind. Real ids of every provider (an inference-profile ARN
 * included) are served.
 */

const GATEWAY_KEY = 'gw-key-model-ids-0123456789';
const KEY_ID = 'AKIAMOCKMODELID00001';
const SECRET = 'mock/model-id/secret/for/tests/only/0000';

type Kind = 'anthropic' | 'bedrock' | 'vertex';

const mocks = cloudMocksForSuite('model-id-', { accessKeyId: KEY_ID, secretAccessKey: SECRET }, 'model-id-subject-token');
// A breaker that would open on the first counted failure.
const ENV = { MODEL_ID_TEST_ANTHROPIC_KEY: 'sk-ant-model-id-held-0123456789', GATEWAY_API_KEYS: GATEWAY_KEY, BREAKER_VOLUME_THRESHOLD: '1', BREAKER_ERROR_THRESHOLD: '1', UPSTREAM_RETRIES: '0' };
const stacks = gatewaysForSuite<Kind>(
  () => ({
    anthropic: { name: 'anthropic', kind: 'anthropic', url: mocks.anthropic.url, api_key_env: 'MODEL_ID_TEST_ANTHROPIC_KEY' },
    bedrock: { name: 'bedrock', kind: 'bedrock', url: mocks.bedrock.url, region: 'us-east-1' },
    vertex: { name: 'vertex', kind: 'vertex', url: mocks.vertex.url, region: 'us-east5', project: 'test-project' },
  }),
  ENV,
  GATEWAY_KEY,
);

/** Model values as raw JSON text (escapes kept as the client wrote them). */
const REFUSED: [string, string][] = [
  ['"."', 'a lone dot'],
  ['".."', 'a dot-dot'],
  ['"../../v1/models"', 'a path climbing out of /model/{id}/'],
  ['"claude-sonnet-5/../../x"', 'dot segments after a real id'],
  ['"\\ud800"', 'a lone surrogate'],
  ['"claude-sonnet-5\\udfff"', 'a real id with a lone low surrogate'],
  [JSON.stringify('c'.repeat(1_100)), 'over 1 KiB'],
  [JSON.stringify('c'.repeat(257)), 'one past the length bound'],
  ['""', 'empty'],
  ['"claude sonnet"', 'a space'],
  ['"claude-sonnet-5\\u0000"', 'a NUL'],
  ['"claude%2f..%2fx"', 'a percent sign'],
  ['"-claude"', 'a leading dash'],
  ['"arn:aws:bedrock:us-east-1:123456789012:inference-profile/../x"', 'an ARN with a dot-dot segment'],
  ['"arn:aws:bedrock:us-east-1:123456789012:inference-profile//x"', 'an ARN with an empty segment'],
  ['"claude?x=1"', 'a query'],
  ['"claude#x"', 'a fragment'],
];

function rawBody(modelJson: string, i: number): string {
  return `{"model":${modelJson},"max_tokens":16,"messages":[{"role":"user","content":"model id ${i}"}]}`;
}

async function breakersNotClosed(stack: UpstreamsStack): Promise<number> {
  return (await scrape(stack.gateway.url)).filter((s) => s.name === 'circuit_breaker_state' && s.value !== 0).length;
}

for (const kind of ['anthropic', 'bedrock', 'vertex'] as const) {
  describe(`${kind}: model ids no provider accepts`, () => {
    test('each gets 400 invalid_request_error over a raw socket; the upstream receives nothing; no breaker opens', async () => {
      const stack = stacks[kind];
      const mock = mocks[kind];
      const before = mock.requests.length;
      for (const [i, [modelJson, what]] of REFUSED.entries()) {
        for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
          const answer = await rawExchange(stack.gateway.url, rawRequest('POST', path, { 'content-type': 'application/json', 'x-gateway-api-key': GATEWAY_KEY }, rawBody(modelJson, i)));
          assert.equal(answer.status, 400, `${what} (${path}): ${answer.body}`);
          const parsed = JSON.parse(answer.body) as { type: string; error: { type: string; message: string } };
          assert.equal(parsed.type, 'error');
          assert.equal(parsed.error.type, 'invalid_request_error', what);
          assert.match(parsed.error.message, /^model: not a model id/, what);
        }
      }
      assert.equal(mock.requests.length, before, 'the upstream received nothing');
      assert.equal(await breakersNotClosed(stack), 0, 'no breaker is open or half-open');
    });

    test('the official SDK (retries on) gets a 400 it does not retry; the upstream receives nothing', async () => {
      const stack = stacks[kind];
      const mock = mocks[kind];
      const before = mock.requests.length;
      const sdk = new Anthropic({ apiKey: GATEWAY_KEY, baseURL: stack.gateway.url, maxRetries: 2 });
      for (const model of ['..', '\ud800', 'x'.repeat(1_100)]) {
        await assert.rejects(sdk.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
          assert.ok(err instanceof Anthropic.BadRequestError, String(err));
          return true;
        });
      }
      assert.equal(mock.requests.length, before, 'the upstream received nothing');
      // Served afterwards: nothing above counted against the model's breaker.
      const served = await sdk.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'after' }] });
      assert.equal(served.type, 'message');
    });
  });
}

describe('real model ids are served', () => {
  test('bedrock: model ids and an inference-profile ARN reach /model/{id}/ as one escaped segment, signature verified', async () => {
    const sdk = stacks.bedrock.client();
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-5-v1:0';
    for (const [model, segment] of [
      ['anthropic.claude-sonnet-5-v1:0', 'anthropic.claude-sonnet-5-v1%3A0'],
      ['us.anthropic.claude-3-5-sonnet-20241022-v2:0', 'us.anthropic.claude-3-5-sonnet-20241022-v2%3A0'],
      [arn, encodeURIComponent(arn)],
    ] as const) {
      const message = await sdk.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: `id ${model}` }] });
      assert.equal(message.type, 'message', model);
      assert.equal(mocks.bedrock.requests.at(-1)?.path, `/model/${segment}/invoke`);
    }
  });

  test('vertex: name@version keeps its @', async () => {
    const message = await stacks.vertex.client().messages.create({ model: 'claude-sonnet-5@20260801', max_tokens: 16, messages: [{ role: 'user', content: 'vertex id' }] });
    assert.equal(message.type, 'message');
    assert.equal(mocks.vertex.requests.at(-1)?.path, '/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-5@20260801:rawPredict');
  });

  test('anthropic: dated and alias ids', async () => {
    for (const model of ['claude-3-5-sonnet-20241022', 'claude-3-7-sonnet-latest', 'claude-sonnet-5']) {
      const message = await stacks.anthropic.client().messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: `id ${model}` }] });
      assert.equal(message.type, 'message', model);
    }
  });
});
