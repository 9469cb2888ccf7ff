import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectBody, type DirectHead } from '../../src/upstream/direct-body.js';

/**
 * undici's control of one request, as its dispatch handler sees it: `pause` and `resume` are what
 * backpressure asks of the connection, `abort` fails the request (undici then reports the error).
 */
class FakeController {
  paused = false;
  resumes = 0;
  readonly aborts: Error[] = [];
  aborted = false;
  reason: Error | null = null;
  constructor(private readonly body: () => DirectBody) {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
  }
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.aborts.push(reason);
    this.body().onError(reason);
  }
}

/**
 * The DirectBody as undici's core drives it (its legacy dispatch handler contract: onConnect with the
 * abort, onHeaders with the resume, onData whose false pauses the connection, onComplete, onError),
 * with every step forced by the test: no sockets, no timers.
 */
function driven() {
  const heads: (DirectHead | Error)[] = [];
  let released = 0;
  let unsubscribed = 0;
  const body: DirectBody = new DirectBody(
    (err, head) => heads.push(head ?? (err as Error)),
    () => released++,
    null,
    () => unsubscribed++,
  );
  const controller = new FakeController(() => body);
  body.onConnect((reason) => controller.abort(reason));
  return {
    body,
    controller,
    heads,
    head(): void {
      body.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/event-stream')], () => controller.resume());
    },
    data(chunk: Buffer | string): boolean {
      if (!body.onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) controller.pause();
      return !controller.paused;
    },
    end(): void {
      body.onComplete();
    },
    get released() {
      return released;
    },
    get unsubscribed() {
      return unsubscribed;
    },
  };
}

/** Runs the ticks the body schedules its deliveries on. */
async function ticks(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => process.nextTick(resolve));
}

const KB16 = Buffer.alloc(16 * 1024, 'x');

describe('DirectBody (the dispatch handler and the body, one object)', () => {
  test('the head is parsed once; chunks that arrive before anyone reads are kept, then delivered in order, then end and close', async () => {
    const d = driven();
    d.head();
    assert.equal(d.heads.length, 1);
    assert.deepEqual((d.heads[0] as DirectHead).headers, { 'content-type': 'text/event-stream' });
    assert.equal(d.data('a'), true);
    assert.equal(d.data('b'), true);
    d.end();
    assert.equal(d.released, 1, 'the permit goes back when undici is done');
    assert.equal(d.unsubscribed, 1);
    const events: string[] = [];
    d.body.on('end', () => events.push('end'));
    d.body.on('close', () => events.push('close'));
    d.body.on('data', (chunk) => events.push(chunk.toString()));
    assert.deepEqual(events, [], 'nothing is delivered from inside a registration');
    await ticks();
    assert.deepEqual(events, ['a', 'b', 'end', 'close']);
  });

  test('a reader that pauses pauses undici (the controller is paused); resume delivers what was kept, then resumes undici', async () => {
    const d = driven();
    d.head();
    const got: string[] = [];
    d.body.on('data', (chunk) => {
      got.push(chunk.toString());
      d.body.pause();
    });
    await ticks();
    assert.equal(d.data('1'), false, 'the reader paused: undici must wait');
    assert.equal(d.data('2'), false, 'still paused');
    assert.deepEqual(got, ['1']);
    d.body.resume();
    await ticks();
    assert.deepEqual(got, ['1', '2'], 'the kept chunk, one per resume');
    assert.equal(d.controller.resumes, 0, 'undici is not resumed while the reader is paused again');
    d.body.resume();
    await ticks();
    assert.equal(d.controller.resumes, 1, 'nothing kept and the reader reads: undici goes on');
  });

  test('with nobody reading, at most 64 KiB are kept before undici is told to pause', () => {
    const d = driven();
    d.head();
    const answers = [0, 1, 2, 3].map(() => d.data(KB16));
    assert.deepEqual(answers, [true, true, true, false]);
  });

  test('resume with no data listener discards the rest (a body nobody wants goes back to the pool)', async () => {
    const d = driven();
    d.head();
    d.data('kept');
    let ended = false;
    d.body.on('end', () => (ended = true));
    d.body.resume();
    await ticks();
    assert.equal(d.data(KB16), true);
    d.end();
    await ticks();
    assert.equal(ended, true);
  });

  test('destroy before the end aborts the request once; only close is emitted; the permit goes back once', async () => {
    const d = driven();
    d.head();
    const events: string[] = [];
    d.body.on('error', () => events.push('error'));
    d.body.on('close', () => events.push('close'));
    d.body.destroy();
    d.body.destroy();
    await ticks();
    assert.equal(d.controller.aborts.length, 1);
    assert.deepEqual(events, ['close']);
    assert.equal(d.released, 1);
  });

  test("undici's failure after the head reaches the reader as error then close; before the head it is the head's failure", async () => {
    const d = driven();
    d.head();
    const events: string[] = [];
    d.body.on('error', (err) => events.push(`error:${err.message}`));
    d.body.on('close', () => events.push('close'));
    d.body.onError(new Error('socket reset'));
    await ticks();
    assert.deepEqual(events, ['error:socket reset', 'close']);
    assert.equal(d.released, 1);

    const early = driven();
    early.body.onError(new Error('refused'));
    assert.equal((early.heads[0] as Error).message, 'refused');
    assert.equal(early.released, 1);
  });

  test("the call's stop: before the connection it aborts at connect; after the head the body errors with the reason", async () => {
    const reason = new Error('stopped');
    const heads: (DirectHead | Error)[] = [];
    const before: DirectBody = new DirectBody((err, head) => heads.push(head ?? (err as Error)), () => undefined, null, undefined);
    before.stop(reason);
    const controller = new FakeController(() => before);
    before.onConnect((r) => controller.abort(r));
    assert.deepEqual(controller.aborts, [reason]);
    assert.deepEqual(heads, [reason]);

    const d = driven();
    d.head();
    const errors: Error[] = [];
    d.body.on('error', (err) => errors.push(err));
    d.body.stop(reason);
    await ticks();
    assert.deepEqual(d.controller.aborts, [reason]);
    assert.deepEqual(errors, [reason]);
  });
});
