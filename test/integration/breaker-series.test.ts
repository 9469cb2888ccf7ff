import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/deferred.js';
import { scrape, sum, type Sample } from '../helpers/prom.js';
import { scriptedUpstream } from '../helpers/scripted-upstream.js';
import { TEST_API_KEY } from '../helpers/stack.js';
import { startUpstreamsGateway } from '../helpers/upstreams-stack.js';

/**
 * README (Metrics): `circuit_breaker_state` has one series per breaker label, each with its own
 * breaker's state; breakers of models without a label of their own share `<upstream>/other` (the
 * worst of them); calls that name no model count as `model="unknown"`.
 */

const HEADERS = { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' };

function message(model: string): string {
  return JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } });
}

/** Per model: `model-a` and `junk-failing` 500, `junk-refused` 400, anything else 200. */
const upstream = await scriptedUpstream((req, res) => {
  let text = '';
  req.on('data', (c: Buffer) => (text += c.toString('utf8')));
  req.on('end', () => {
    if (req.url?.startsWith('/v1/models') === true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [], has_more: false, first_id: null, last_id: null }));
      return;
    }
    const model = (JSON.parse(text) as { model: string }).model;
    const status = model === 'model-a' || model === 'junk-failing' ? 500 : model === 'junk-refused' ? 400 : 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 200 ? message(model) : JSON.stringify({ type: 'error', error: { type: status === 400 ? 'invalid_request_error' : 'api_error', message: 'scripted' } }));
  });
});
after(() => upstream.close());

function states(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === 'circuit_breaker_state') out[s.labels.breaker as string] = s.value;
  return out;
}

test('two models, one breaker open and one closed: two series with their own values; unlabelled models share `other` at the worst state; no-model calls are `unknown`', async () => {
  // model-a is listed in MODELS (its own label from the start); model-b earns its label from a 2xx.
  const stack = await startUpstreamsGateway([{ name: 'anthropic', url: upstream.url }], {
    MODELS: 'model-a',
    BREAKER_VOLUME_THRESHOLD: '2',
    BREAKER_ERROR_THRESHOLD: '50',
    BREAKER_RESET_TIMEOUT_MS: '600000',
    UPSTREAM_RETRIES: '0',
  });
  try {
    const send = async (model: string): Promise<number> => {
      const res = await fetch(`${stack.gateway.url}/v1/messages`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }) });
      await res.arrayBuffer();
      return res.status;
    };
    for (let i = 0; i < 2; i++) assert.equal(await send('model-a'), 500);
    await eventually(async () => states(await scrape(stack.gateway.url))['anthropic/model-a'] === 2, 5_000, 'model-a breaker open');
    assert.equal(await send('model-b'), 200);
    assert.equal(await send('model-b'), 200);
    // Two models without labels: one open, one closed afterwards (a 400 is the client's, never a failure).
    for (let i = 0; i < 2; i++) assert.equal(await send('junk-failing'), 500);
    await eventually(async () => states(await scrape(stack.gateway.url))['anthropic/other'] === 2, 5_000, 'junk-failing breaker open');
    assert.equal(await send('junk-refused'), 400);
    const models = await fetch(`${stack.gateway.url}/v1/models`, { headers: HEADERS });
    assert.equal(models.status, 200);
    await models.arrayBuffer();

    const samples = await scrape(stack.gateway.url);
    assert.deepEqual(states(samples), { 'anthropic/model-a': 2, 'anthropic/model-b': 0, 'anthropic/other': 2, 'anthropic/endpoint:models': 0 });
    assert.equal(await send('model-a'), 529, 'model-a is refused by its open breaker');
    assert.equal(sum(samples, 'claude_api_calls_total', { endpoint: 'models', model: 'unknown', status: '200' }), 1, 'a call that names no model is model="unknown"');
  } finally {
    await stack.close();
  }
});
