import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admit, BREAKER_ACCOUNTING, type CallEnd } from '../../../src/pipeline/call/admit.js';
import type { Breakers, BreakerPermit } from '../../../src/pipeline/breaker.js';
import type { CallOutcome, FlightSource } from '../../../src/pipeline/coalesce/flight.js';
import { UsageMeter } from '../../../src/upstream/usage.js';
import { deferred } from '../../helpers/deferred.js';
import { answer, FakeScope, fakeCall, fakeUpstream, flush, gatewayError, scriptedNext, transportError } from '../../helpers/fake-call.js';

/** A permit as the breaker gives it: the first word counts (every word is recorded, to see who spoke when). */
class FakePermit implements BreakerPermit {
  readonly words: string[] = [];
  constructor(readonly probe: boolean) {}
  get first(): string | undefined {
    return this.words[0];
  }
  succeed(): void {
    this.words.push('succeed');
  }
  fail(reason: unknown): void {
    this.words.push(`fail: ${reason instanceof Error ? reason.message : String(reason)}`);
  }
}

function fakeBreakers(permit: FakePermit | Error) {
  const asked: [string, string | undefined, string][] = [];
  const breakers = {
    admit(upstream: string, model: string | undefined, endpoint: string): BreakerPermit {
      asked.push([upstream, model, endpoint]);
      if (permit instanceof Error) throw permit;
      return permit;
    },
  } as unknown as Breakers;
  return { breakers, asked };
}

const upstream = fakeUpstream('primary');
const PROBE_TIMEOUT_MS = 1_000;

/** What each way a call can end looks like at the flight's end, by BREAKER_ACCOUNTING's name for it. */
const ENDS: Record<CallEnd, Partial<CallOutcome> & { head: CallOutcome['head']; streamError?: string }> = {
  answered: { head: answer(200).head },
  abandoned: { head: answer(200).head, abandoned: true, complete: false },
  refused_by_gateway: { head: undefined, error: gatewayError('NOT_FORWARDABLE') },
  blames_request: { head: answer(400).head },
  rate_limited: { head: answer(429).head },
  overloaded: { head: answer(529).head },
  server_error: { head: answer(503).head },
  upstream_failed: { head: undefined, error: transportError('ECONNREFUSED') },
  stream_broke: { head: answer(200, [], [], true).head, streamError: 'overloaded_error' },
};

describe('admit interceptor (breaker permit)', () => {
  test("asks the breaker of (upstream, model, endpoint); an ordinary call passes through with no promise of admit's own", () => {
    const permit = new FakePermit(false);
    const { breakers, asked } = fakeBreakers(permit);
    const inner = Promise.resolve(answer(200));
    const dispatched = admit(breakers, PROBE_TIMEOUT_MS)(() => inner)(fakeCall({ upstream, model: 'claude-x' }), new FakeScope());
    assert.equal(dispatched, inner);
    assert.deepEqual(asked, [['primary', 'claude-x', 'messages']]);
    assert.deepEqual(permit.words, [], 'nothing settles before the call ends');
  });

  test('an open breaker refuses before anything inner runs, and registers nothing', () => {
    const { breakers } = fakeBreakers(gatewayError('CIRCUIT_OPEN'));
    const fake = scriptedNext();
    const scope = new FakeScope();
    assert.throws(() => admit(breakers, PROBE_TIMEOUT_MS)(fake.next)(fakeCall({ upstream }), scope), (err: unknown) => (err as { code?: string }).code === 'CIRCUIT_OPEN');
    assert.equal(fake.calls.length, 0);
    assert.equal(scope.hooks.length, 0);
  });

  for (const [end, shape] of Object.entries(ENDS) as [CallEnd, (typeof ENDS)[CallEnd]][]) {
    const counts = BREAKER_ACCOUNTING[end].counts;
    test(`${end}: the permit settles once, at the call's end, as ${counts ? 'a failure' : 'a success'}`, async () => {
      const permit = new FakePermit(false);
      const { breakers } = fakeBreakers(permit);
      const scope = new FakeScope();
      await admit(breakers, PROBE_TIMEOUT_MS)(() => Promise.resolve(answer(200)))(fakeCall({ upstream }), scope);
      if (shape.streamError !== undefined) {
        const meter = new UsageMeter(true, false);
        meter.push(Buffer.from(`event: error\ndata: {"type":"error","error":{"type":"${shape.streamError}","message":"m"}}\n\n`));
        scope.facts.meter = meter;
      }
      const { streamError: _ignored, ...outcome } = shape;
      scope.settle(outcome);
      assert.equal(permit.words.length, 1);
      assert.equal(permit.first?.startsWith('fail'), counts, permit.first);
    });
  }

  test('a probe settles as soon as its head arrives, by the head: the end cannot overrule it', async () => {
    for (const [status, verdict] of [[200, 'succeed'], [400, 'succeed'], [503, 'fail: upstream answered 503'], [529, 'fail: upstream answered 529']] as const) {
      const permit = new FakePermit(true);
      const { breakers } = fakeBreakers(permit);
      const head = deferred<FlightSource>();
      const scope = new FakeScope();
      const pending = admit(breakers, PROBE_TIMEOUT_MS)(() => head.promise)(fakeCall({ upstream }), scope);
      await flush();
      assert.deepEqual(permit.words, [], 'no word before the head');
      head.resolve(answer(status));
      await pending;
      assert.equal(permit.first, verdict);
    }
  });

  test('a probe that gets no head within the probe timeout fails its permit then, not later', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const permit = new FakePermit(true);
    const { breakers } = fakeBreakers(permit);
    const head = deferred<FlightSource>();
    const scope = new FakeScope();
    const pending = admit(breakers, PROBE_TIMEOUT_MS)(() => head.promise)(fakeCall({ upstream }), scope);
    t.mock.timers.tick(PROBE_TIMEOUT_MS - 1);
    assert.deepEqual(permit.words, []);
    t.mock.timers.tick(1);
    assert.deepEqual(permit.words, [`fail: probe got no answer within ${PROBE_TIMEOUT_MS} ms`]);
    head.resolve(answer(200));
    await pending;
    assert.equal(permit.first?.startsWith('fail'), true, 'the late head does not change the first word');
  });

  test("a probe answered in time clears its deadline: no late failure", async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const permit = new FakePermit(true);
    const { breakers } = fakeBreakers(permit);
    const scope = new FakeScope();
    const got = await admit(breakers, PROBE_TIMEOUT_MS)(() => Promise.resolve(answer(200)))(fakeCall({ upstream }), scope);
    t.mock.timers.tick(PROBE_TIMEOUT_MS * 2);
    await scope.finish(got);
    assert.deepEqual(permit.words, ['succeed', 'succeed'], 'the head, then the (idempotent) end: never a fail');
  });
});
