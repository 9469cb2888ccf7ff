import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { reportBrokenAnswers } from '../../../src/pipeline/call/report.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { answer, FakeScope, fakeCall, scriptedNext, transportError } from '../../helpers/fake-call.js';

/** An interceptor whose log goes to a capture. */
function reporter(): { logs: LogCapture; intercept: ReturnType<typeof reportBrokenAnswers> } {
  const logs = new LogCapture();
  return { logs, intercept: reportBrokenAnswers(createLogger('info', logs)) };
}

const warnings = (logs: LogCapture): Record<string, unknown>[] => logs.records().filter((r) => r.level === 'warn');

describe('report interceptor (answers broken after their head)', () => {
  test('hands the call on as it came and answers what next answered', async () => {
    const { intercept } = reporter();
    const call = fakeCall();
    const given = answer(200);
    const inner = scriptedNext(() => given);
    assert.equal(await intercept(inner.next)(call, new FakeScope()), given);
    assert.equal(inner.calls[0]?.call, call);
  });

  test('a body cut after the head is one warning: its code, the path without its query, the subscribers', async () => {
    const { logs, intercept } = reporter();
    const scope = new FakeScope();
    const got = await intercept(scriptedNext(() => answer(200, [], ['{"id":'])).next)(fakeCall({ path: '/v1/messages?beta=true&key=secret' }), scope);
    await scope.pump(got);
    assert.equal(warnings(logs).length, 0, 'nothing until the call ends');
    scope.settle({ head: got.head, error: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), subscribers: 3 });
    // The raw socket error, in the gateway's words (upstream/client.ts translateUpstreamError, body phase).
    assert.deepEqual(warnings(logs).map(({ code, path, subscribers, msg }) => ({ code, path, subscribers, msg })), [
      { code: 'UPSTREAM_UNREACHABLE', path: '/v1/messages', subscribers: 3, msg: 'Upstream connection failed mid-response (ECONNRESET)' },
    ]);
    assert.doesNotMatch(logs.text(), /secret/);
  });

  test("a coded error keeps its code (a stream the meter refused)", async () => {
    const { logs, intercept } = reporter();
    const scope = new FakeScope();
    const got = await intercept(scriptedNext(() => answer(200, [], ['data'], true)).next)(fakeCall(), scope);
    scope.settle({ head: got.head, error: new GatewayError('UPSTREAM_RESPONSE_INVALID', 'stream event too large') });
    assert.deepEqual(warnings(logs).map((r) => [r.code, r.msg]), [['UPSTREAM_RESPONSE_INVALID', 'stream event too large']]);
  });

  test('no warning for an answer received whole, a failure before the head, an abort or an abandoned call', async () => {
    const { logs, intercept } = reporter();
    const whole = new FakeScope();
    await whole.finish(await intercept(scriptedNext(() => answer(200)).next)(fakeCall(), whole));

    const early = new FakeScope();
    const refused = transportError('ECONNREFUSED');
    await assert.rejects(intercept(scriptedNext(() => Promise.reject(refused)).next)(fakeCall(), early));
    early.settle({ head: undefined, error: refused });

    const aborted = new FakeScope();
    const head = (await intercept(scriptedNext(() => answer(200)).next)(fakeCall(), aborted)).head;
    aborted.settle({ head, error: Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }) });

    const abandoned = new FakeScope();
    const head2 = (await intercept(scriptedNext(() => answer(200)).next)(fakeCall(), abandoned)).head;
    abandoned.settle({ head: head2, error: transportError('ECONNRESET', 'body'), abandoned: true });

    assert.deepEqual(warnings(logs), []);
  });
});
