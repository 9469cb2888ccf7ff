import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { GatewayError } from '../../../src/core/errors.js';
import { AttemptLimit } from '../../../src/pipeline/call/attempt-limit.js';
import { transport } from '../../../src/pipeline/call/transport.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../../src/upstream/client.js';
import type { OutgoingRequest, PreparedCall, ProviderResponse, UpstreamAdapter } from '../../../src/upstream/kinds/kind.js';
import { FakeScope, fakeCall, fakeUpstream, gatewayError } from '../../helpers/fake-call.js';

function raw(status: number, headers: UpstreamResponse['headers'], delimited = true): UpstreamResponse {
  return { status, headers, body: Readable.from([Buffer.from('{}')]), decoded: false, delimited, requestId: undefined };
}

function fakeClient(response: () => UpstreamResponse) {
  const sent: UpstreamRequest[] = [];
  const client = { send: (req: UpstreamRequest) => { sent.push(req); return Promise.resolve(response()); } } as unknown as UpstreamClient;
  return { client, sent };
}

/** An adapter that rewrites the path, adds a credential and (optionally) rewrites the answer's status. */
function fakeAdapter(options: { fail?: GatewayError; translate?: (res: ProviderResponse) => ProviderResponse | Promise<ProviderResponse> } = {}) {
  const prepared: OutgoingRequest[] = [];
  const adapter: UpstreamAdapter = {
    kind: 'bedrock',
    refuses: () => undefined,
    prepare(req): Promise<PreparedCall> {
      prepared.push(req);
      if (options.fail !== undefined) return Promise.reject(options.fail);
      return Promise.resolve({ path: `/provider${req.path}`, headers: [...req.headers, 'authorization', 'signed'], body: req.body, translate: options.translate ?? ((res) => res) });
    },
  };
  return { adapter, prepared };
}

describe('transport (innermost dispatch)', () => {
  test("spends one of the call's attempts, prepares through the adapter with the mapped model, sends what it prepared on the call's stop", async () => {
    const { client, sent } = fakeClient(() => raw(200, { 'content-type': 'application/json' }));
    const { adapter, prepared } = fakeAdapter();
    const upstream = fakeUpstream('bed', { models: new Map([['claude-sonnet-5', 'provider-model-id']]) }, client, adapter);
    const attempts = new AttemptLimit(2);
    const scope = new FakeScope();
    const got = await transport()(fakeCall({ upstream, attempts, headers: ['anthropic-version', '2023-06-01'] }), scope);
    assert.equal(attempts.left, 1);
    assert.equal(prepared[0]?.model, 'provider-model-id');
    const req = sent[0];
    assert.ok(req !== undefined);
    assert.equal(req.path, '/provider/v1/messages');
    assert.deepEqual(req.headers, ['anthropic-version', '2023-06-01', 'authorization', 'signed']);
    assert.equal(req.signal, scope.stop);
    assert.equal(got.head.status, 200);
    assert.equal(got.head.eventStream, false);
    assert.equal(typeof scope.facts.sentAt, 'number');
    assert.equal(typeof scope.facts.headersAt, 'number');
  });

  test('the framed fact is the HTTP framing of the answer', async () => {
    for (const delimited of [true, false]) {
      const { client } = fakeClient(() => raw(200, { 'content-type': 'text/event-stream' }, delimited));
      const scope = new FakeScope();
      const got = await transport()(fakeCall({ upstream: fakeUpstream('u', {}, client, fakeAdapter().adapter), attempts: new AttemptLimit(1) }), scope);
      assert.equal(scope.facts.framed, delimited);
      assert.equal(got.head.eventStream, true);
    }
  });

  test("the adapter's translation (sync or async) is the answer; hop-by-hop headers never pass", async () => {
    const { client } = fakeClient(() => raw(400, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-amzn-requestid': 'r1' }));
    const translated = (res: ProviderResponse): Promise<ProviderResponse> => Promise.resolve({ ...res, status: 529 });
    const got = await transport()(fakeCall({ upstream: fakeUpstream('u', {}, client, fakeAdapter({ translate: translated }).adapter), attempts: new AttemptLimit(1) }), new FakeScope());
    assert.equal(got.head.status, 529);
    const names = got.head.headers.filter((_, i) => i % 2 === 0);
    assert.ok(!names.includes('connection') && !names.includes('keep-alive'), names.join());
  });

  test('credentials that cannot be had reject before anything is sent, the attempt still spent', async () => {
    const { client, sent } = fakeClient(() => raw(200, {}));
    const attempts = new AttemptLimit(3);
    const scope = new FakeScope();
    const failure = gatewayError('UPSTREAM_AUTH_FAILED');
    await assert.rejects(transport()(fakeCall({ upstream: fakeUpstream('u', {}, client, fakeAdapter({ fail: failure }).adapter), attempts }), scope), (err: unknown) => err === failure);
    assert.equal(sent.length, 0);
    assert.equal(attempts.left, 2);
    assert.equal(scope.facts.sentAt, undefined, 'nothing was sent: no upstream call to record');
  });

  test('with no attempt left, or no upstream chosen, nothing is prepared or sent', async () => {
    const { client, sent } = fakeClient(() => raw(200, {}));
    const { adapter, prepared } = fakeAdapter();
    const upstream = fakeUpstream('u', {}, client, adapter);
    await assert.rejects(transport()(fakeCall({ upstream, attempts: new AttemptLimit(0) }), new FakeScope()), /no attempt left/);
    // No upstream chosen is no longer a run-time case: a call without the route's decisions does not compile (chain.ts).
    // @ts-expect-error an UpstreamCall is not a RoutedCall: only the route hands calls inward
    const unrouted: Parameters<ReturnType<typeof transport>>[0] = fakeCall({ attempts: new AttemptLimit(1) });
    assert.equal(unrouted.upstream, undefined);
    assert.equal(prepared.length + sent.length, 0);
  });
});
