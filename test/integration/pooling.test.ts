import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../helpers/stack.js';

const params = { model: 'claude-haiku-5-5', max_tokens: 8, messages: [{ role: 'user' as const, content: 'pool' }] };

describe('upstream connection pooling', () => {
  test('sequential calls reuse one keep-alive socket; concurrent calls stay within UPSTREAM_CONNECTIONS', async () => {
    // Identical sequential calls must each reach upstream to exercise the socket: no lingering answers.
    const stack = await startStack({ env: { UPSTREAM_CONNECTIONS: '4', COALESCE_LINGER_MS: '0' } });
    try {
      const client = stack.client();
      for (let i = 0; i < 30; i++) await client.messages.create(params);
      assert.equal(stack.mock.stats().connections, 1, 'sequential calls share one upstream socket');

      await Promise.all(Array.from({ length: 60 }, (_, i) =>
        client.messages.create({ ...params, messages: [{ role: 'user', content: `pool ${i}` }] }),
      ));
      const after = stack.mock.stats();
      assert.equal(after.byPath['POST /v1/messages'], 90);
      assert.ok(after.connections <= 4, `at most 4 upstream sockets for 90 calls, saw ${after.connections}`);

      const streams = await Promise.all(Array.from({ length: 20 }, () => client.messages.stream(params).finalMessage()));
      assert.equal(streams.length, 20);
      assert.ok(stack.mock.stats().connections <= 4, 'streams share the same pool');
    } finally {
      await stack.close();
    }
  });
});
