import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { share } from '../../../src/pipeline/call/share.js';
import type { FlightHead } from '../../../src/pipeline/coalesce/flight.js';
import type { SharedFlights, SharedJoin, SharedPublisher } from '../../../src/pipeline/coalesce/shared-flights.js';
import { deferred } from '../../helpers/deferred.js';
import { answer, answers, FakeScope, fakeCall, flush, scriptedNext } from '../../helpers/fake-call.js';

class FakePublisher implements SharedPublisher {
  readonly takeover = false;
  readonly log: string[] = [];
  listening: ((listening: boolean) => void) | undefined;
  stillListenedAnswer = Promise.resolve(false);
  head(head: FlightHead): void {
    this.log.push(`head ${head.status}`);
  }
  chunk(chunk: Buffer): void {
    this.log.push(`chunk ${chunk.toString()}`);
  }
  end(whole: boolean): void {
    this.log.push(`end whole=${whole}`);
  }
  fail(error: unknown): void {
    this.log.push(`fail ${error instanceof Error ? error.message : String(error)}`);
  }
  abandon(): void {
    this.log.push('abandon');
  }
  watchListeners(onChange: (listening: boolean) => void): void {
    this.listening = onChange;
  }
  stillListened(): Promise<boolean> {
    return this.stillListenedAnswer;
  }
}

function fakeShared(join: SharedJoin) {
  const keys: string[] = [];
  const shared: SharedFlights = { join: (key) => { keys.push(key); return Promise.resolve(join); } };
  return { shared, keys };
}

const keyed = fakeCall({ sharedKey: 'fp-1' });

describe('share interceptor (cross-instance coalescing)', () => {
  test('without Redis, or without a shared key, or when no coordination is possible: the call goes on inward as this instance\'s own', async () => {
    const none = scriptedNext(answers(answer(200)));
    const scope = new FakeScope();
    await share(undefined)(none.next)(keyed, scope);
    assert.equal(none.calls.length, 1);
    assert.equal(scope.facts.origin, 'upstream');

    const { shared, keys } = fakeShared({ role: 'local' });
    const unkeyed = scriptedNext(answers(answer(200)));
    await share(shared)(unkeyed.next)(fakeCall({ sharedKey: undefined }), new FakeScope());
    assert.deepEqual(keys, [], 'no key: the port is not asked');
    const local = scriptedNext(answers(answer(200)));
    await share(shared)(local.next)(keyed, new FakeScope());
    assert.deepEqual(keys, ['fp-1']);
    assert.equal(local.calls.length, 1);
  });

  test("follower: the other instance's answer is relayed, nothing inner runs, framed is the leader's verdict", async () => {
    let whole = false;
    const relayed = answer(200, [], ['{"relayed":true}']);
    const { shared } = fakeShared({ role: 'follower', answer: relayed, whole: () => whole });
    const inner = scriptedNext();
    const scope = new FakeScope();
    const got = await share(shared)(inner.next)(keyed, scope);
    assert.equal(got, relayed);
    assert.equal(inner.calls.length, 0);
    assert.equal(scope.facts.origin, 'remote');
    assert.equal((await scope.pump(got)).toString(), '{"relayed":true}');
    whole = true; // the leader's end entry arrived with the body's end
    scope.settle({ head: got.head });
    assert.equal(scope.facts.framed, true);
  });

  test('leader: publishes the head, every chunk in order, then exactly one end marked whole; the hold is released', async () => {
    const publisher = new FakePublisher();
    const { shared } = fakeShared({ role: 'leader', publisher });
    const scope = new FakeScope();
    const inner = scriptedNext((_call, ctx) => {
      ctx.facts.framed = true;
      return answer(200, [], ['{"a":', '1}']);
    });
    const got = await share(shared)(inner.next)(keyed, scope);
    assert.equal(scope.holds, 1, 'held while remote followers may listen');
    await scope.finish(got);
    assert.deepEqual(publisher.log, ['head 200', 'chunk {"a":', 'chunk 1}', 'end whole=true']);
    assert.equal(scope.holds, 0);
  });

  test('leader: an answer that is not whole ends unmarked; a failed call publishes a fail, never an end', async () => {
    const unframed = new FakePublisher();
    const scope = new FakeScope();
    const got = await share(fakeShared({ role: 'leader', publisher: unframed }).shared)(scriptedNext(answers(answer(200))).next)(keyed, scope);
    await scope.finish(got); // framed never set: a cut could not be told from an end
    assert.equal(unframed.log.at(-1), 'end whole=false');

    const failing = new FakePublisher();
    const failed = new FakeScope();
    const err = new Error('connect refused');
    await assert.rejects(share(fakeShared({ role: 'leader', publisher: failing }).shared)(scriptedNext(() => Promise.reject(err)).next)(keyed, failed));
    failed.settle({ head: undefined, error: err });
    assert.deepEqual(failing.log, ['fail connect refused']);
    assert.equal(failed.holds, 0);
  });

  test('leader whose own clients left: the hold is released only when the port says nobody listens', async () => {
    const publisher = new FakePublisher();
    const listened = deferred<boolean>();
    publisher.stillListenedAnswer = listened.promise;
    const scope = new FakeScope();
    await share(fakeShared({ role: 'leader', publisher }).shared)(scriptedNext(answers(answer(200))).next)(keyed, scope);
    scope.listeners = 0;
    for (const idle of scope.idleHooks) idle();
    await flush();
    assert.equal(scope.holds, 1, 'still asking the port');
    listened.resolve(true);
    await flush();
    assert.equal(scope.holds, 1, 'a remote follower listens: the call goes on');
    publisher.stillListenedAnswer = Promise.reject(new Error('redis down'));
    publisher.listening?.(false);
    await flush();
    assert.equal(scope.holds, 0, 'a Redis failure answers "nobody": the call may stop');
  });
});
