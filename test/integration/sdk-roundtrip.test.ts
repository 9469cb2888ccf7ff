import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, type Stack, TEST_API_KEY } from '../helpers/stack.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';

const params = {
  model: 'claude-sonnet-5',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'Tell me about gateways' }],
};

describe('the official SDK through the gateway', () => {
  let stack: Stack;
  let client: Anthropic;
  /** The same mock reached directly: what the SDK sees without the gateway. */
  let direct: Anthropic;

  before(async () => {
    stack = await startStack();
    client = stack.client();
    direct = new Anthropic({ apiKey: TEST_API_KEY, baseURL: stack.mock.url, maxRetries: 0 });
  });
  after(async () => {
    await stack.close();
  });

  test('messages.create returns exactly what the API returns', async () => {
    const viaGateway = await client.messages.create(params);
    const viaDirect = await direct.messages.create(params);
    assert.deepEqual(viaGateway, viaDirect);
    assert.equal(viaGateway.type, 'message');
    assert.ok(viaGateway.usage.input_tokens > 0);
  });

  test('messages.stream delivers every event and the final message', async () => {
    const stream = client.messages.stream(params);
    const events: string[] = [];
    stream.on('streamEvent', (event) => events.push(event.type));
    const message = await stream.finalMessage();
    const plain = await direct.messages.create(params);
    assert.deepEqual(message.content, plain.content);
    assert.equal(message.usage.output_tokens, plain.usage.output_tokens);
    assert.equal(events[0], 'message_start');
    assert.equal(events.at(-1), 'message_stop');
    assert.ok(events.includes('content_block_delta'));
    assert.ok(events.includes('message_delta'));
  });

  test('countTokens and models.list (with paging) work unchanged', async () => {
    const counted = await client.messages.countTokens({ model: params.model, messages: params.messages });
    assert.deepEqual(counted, await direct.messages.countTokens({ model: params.model, messages: params.messages }));

    const ids: string[] = [];
    for await (const model of client.models.list({ limit: 1 })) ids.push(model.id);
    const directIds: string[] = [];
    for await (const model of direct.models.list({ limit: 1 })) directIds.push(model.id);
    assert.ok(ids.length > 1, 'several pages were walked');
    assert.deepEqual(ids, directIds);
    assert.equal((await client.models.retrieve(ids[0] as string)).id, ids[0]);
  });

  test('batch results_url points at the gateway, and results are fetched through it', async () => {
    const batch = await client.messages.batches.create({ requests: [{ custom_id: 'one', params }, { custom_id: 'two', params }] });
    const ended = await client.messages.batches.retrieve(batch.id);
    assert.ok(ended.results_url !== null, 'the mock ends a batch after the first retrieve');
    assert.ok(ended.results_url.startsWith(stack.gateway.url + '/v1/messages/batches/'), ended.results_url);
    const before = stack.mock.stats().requests;
    const results: string[] = [];
    for await (const line of await client.messages.batches.results(batch.id)) results.push(line.custom_id);
    assert.deepEqual(results.sort(), ['one', 'two']);
    assert.ok(stack.mock.stats().requests > before, 'the results were fetched through the gateway from upstream');

    const listed = await client.messages.batches.list();
    for (const item of listed.data) {
      if (item.results_url !== null) assert.ok(item.results_url.startsWith(stack.gateway.url), 'list pages are rewritten too');
    }
  });
});

describe('base URLs with a path prefix', () => {
  test('a client base URL under BASE_PATH and an UPSTREAM_URL with a prefix both work', async () => {
    // The upstream sits behind a path prefix (e.g. a corporate egress proxy); the mock is reached
    // through a tiny prefix-stripping hop so the prefix must really be sent.
    const { createServer, request } = await import('node:http');
    const seenPaths: string[] = [];
    let mockUrl = '';
    const hop = createServer((req, res) => {
      seenPaths.push(req.url ?? '');
      const url = (req.url ?? '').replace(/^\/egress/, '');
      const upstream = request(mockUrl + url, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
    const port = (hop.address() as { port: number }).port;
    // The upstream's absolute URLs are under its public (prefixed) address.
    const mock = await createMockUpstream({ publicUrl: `http://127.0.0.1:${port}/egress` });
    mockUrl = mock.url;
    const stack = await startStack({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}/egress`, BASE_PATH: '/anthropic' }, basePath: '/anthropic' });
    try {
      const message = await stack.client().messages.create(params);
      assert.equal(message.type, 'message');
      assert.deepEqual(seenPaths, ['/egress/v1/messages']);
      seenPaths.length = 0;
      const batch = await stack.client().messages.batches.create({ requests: [{ custom_id: 'x', params }] });
      const ended = await stack.client().messages.batches.retrieve(batch.id);
      assert.ok(ended.results_url?.startsWith(`${stack.gateway.url}/anthropic/v1/messages/batches/`), String(ended.results_url));
    } finally {
      await stack.close();
      hop.closeAllConnections();
      await new Promise((r) => hop.close(r));
      await mock.close();
    }
  });
});
