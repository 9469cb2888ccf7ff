import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/core/errors.js';
import { rewrite } from '../../../src/pipeline/call/rewrite.js';
import { answerPairsOf } from '../../../src/upstream/header-list.js';
import { answer, FakeScope, fakeCall, fakeUpstream, scriptedNext } from '../../helpers/fake-call.js';

const upstream = fakeUpstream('batches', { origin: 'https://provider.test', pathPrefix: '/anthropic' });
const edits: [string, string][] = [];
const toGateway = (body: Buffer, base: string): Buffer => {
  edits.push([body.toString(), base]);
  return Buffer.from(body.toString().replace(base, 'https://gateway.test'));
};
const BATCH = '{"results_url":"https://provider.test/anthropic/v1/messages/batches/b1/results"}';

describe('rewrite interceptor (batch results_url)', () => {
  test('a call that does not ask passes straight through: the inner promise itself', () => {
    const inner = Promise.resolve(answer(200));
    assert.equal(rewrite()(() => inner)(fakeCall({ upstream }), new FakeScope()), inner);
  });

  test("a successful JSON answer is rewritten against the answering upstream's base URL and re-framed", async () => {
    const scope = new FakeScope();
    const inner = scriptedNext(() => answer(200, [['content-type', 'application/json'], ['content-length', String(BATCH.length)], ['content-encoding', 'identity'], ['request-id', 'r1']], [BATCH.slice(0, 10), BATCH.slice(10)]));
    const got = await rewrite()(inner.next)(fakeCall({ upstream, rewriteJson: toGateway }), scope);
    const body = (await scope.pump(got)).toString();
    assert.equal(body, '{"results_url":"https://gateway.test/v1/messages/batches/b1/results"}');
    assert.deepEqual(edits.at(-1), [BATCH, 'https://provider.test/anthropic']);
    const headers = Object.fromEntries(answerPairsOf(got.head.headers));
    assert.equal(headers['content-length'], String(body.length));
    assert.equal(headers['content-encoding'], undefined);
    assert.equal(headers['request-id'], 'r1');
  });

  test('errors and non-JSON answers are handed on untouched', async () => {
    const before = edits.length;
    for (const original of [answer(404, [], [BATCH]), answer(200, [['content-type', 'text/plain']], ['plain'])]) {
      const got = await rewrite()(scriptedNext(() => original).next)(fakeCall({ upstream, rewriteJson: toGateway }), new FakeScope());
      assert.equal(got, original);
    }
    assert.equal(edits.length, before);
  });

  test('an edit that changes nothing keeps the bytes; an answer past the bound is a coded 502, not an unbounded buffer', async () => {
    const scope = new FakeScope();
    const same = await rewrite()(scriptedNext(() => answer(200, [], [BATCH])).next)(fakeCall({ upstream, rewriteJson: () => undefined }), scope);
    assert.equal((await scope.pump(same)).toString(), BATCH);
    const big = 'x'.repeat(1024 * 1024);
    const tooLarge = answer(200, [], Array.from({ length: 9 }, () => big));
    await assert.rejects(rewrite()(scriptedNext(() => tooLarge).next)(fakeCall({ upstream, rewriteJson: toGateway }), new FakeScope()), (err: unknown) => err instanceof GatewayError && err.code === 'UPSTREAM_RESPONSE_INVALID');
  });
});
