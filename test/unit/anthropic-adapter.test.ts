import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { GatewayError } from '../../src/core/errors.js';
import { AnthropicAdapter } from '../../src/upstream/kinds/anthropic.js';
import type { OutgoingRequest } from '../../src/upstream/kinds/kind.js';
import { MAX_REWRITTEN_BODY } from '../../src/upstream/kinds/responses.js';
import { readWhole } from '../../src/upstream/read-whole.js';

function request(body: string, model: string | undefined, headers: string[] = []): OutgoingRequest {
  return { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers, body: Buffer.from(body), model };
}

describe('AnthropicAdapter', () => {
  test('serves everything; without a held key the client credential passes through untouched', async () => {
    const adapter = new AnthropicAdapter();
    assert.equal(adapter.refuses(), undefined);
    const req = request('{"model":"m"}', 'm', ['x-api-key', 'sk-client']);
    const prepared = await adapter.prepare(req);
    assert.deepEqual(prepared.headers, ['x-api-key', 'sk-client']);
    assert.equal(prepared.body, req.body, 'same bytes, not even copied');
    assert.equal(prepared.path, '/v1/messages');
  });

  test('a held key replaces every client credential', async () => {
    const prepared = await new AnthropicAdapter('sk-held').prepare(request('{"model":"m"}', 'm', ['authorization', 'Bearer sk-client', 'X-Api-Key', 'sk-client', 'anthropic-version', '2023-06-01']));
    assert.deepEqual(prepared.headers, ['anthropic-version', '2023-06-01', 'x-api-key', 'sk-held']);
  });

  test('the model map edits only the top-level model string, in place, and only when it differs', async () => {
    const adapter = new AnthropicAdapter(undefined, true);
    const body = '{"model":"claude-sonnet-5","messages":[{"model":"nested"}],"n":1.0}';
    const mapped = await adapter.prepare(request(body, 'claude-sonnet-5-20260801'));
    assert.equal((mapped.body as Buffer).toString(), '{"model":"claude-sonnet-5-20260801","messages":[{"model":"nested"}],"n":1.0}');
    const same = request(body, 'claude-sonnet-5');
    assert.equal((await adapter.prepare(same)).body, same.body);
    const unmapped = request(body, 'claude-sonnet-5-20260801');
    assert.equal((await new AnthropicAdapter().prepare(unmapped)).body, unmapped.body, 'no model map: the body is not even scanned');
  });
});

describe('readWhole', () => {
  test('a provider body longer than the bound is a coded error, not an unbounded buffer', async () => {
    const big = Readable.from([Buffer.alloc(MAX_REWRITTEN_BODY), Buffer.alloc(10)]);
    await assert.rejects(readWhole(big, MAX_REWRITTEN_BODY, 'Bedrock'), (err: unknown) => err instanceof GatewayError && err.code === 'UPSTREAM_RESPONSE_INVALID');
    assert.equal((await readWhole(Readable.from([Buffer.from('{"a":1}')]), MAX_REWRITTEN_BODY, 'Bedrock')).toString(), '{"a":1}');
  });
});
