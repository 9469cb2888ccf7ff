import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { OutgoingHttpHeader } from 'node:http';
import { Flight, type CallOutcome, type FlightLimits, type FlightSource, type Sink, type SubscriberOutcome } from '../../src/pipeline/coalesce/flight.js';
import { FlightGroup, MAX_DESCRIBED_FLIGHTS } from '../../src/pipeline/coalesce/flight-group.js';
import { deferred, until, type Deferred } from '../helpers/deferred.js';
import { DirectBody } from '../../src/upstream/direct-body.js';

/**
 * The flight's concurrency core with a fake sink: every order of events is forced by latches, no
 * sleeps. A FakeSink takes `capacity` writes and then asks to wait for `drain` until the test
 * calls `drain()`; nothing else moves it.
 */
class FakeSink extends EventEmitter implements Sink {
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  status = 0;
  readonly headers = new Map<string, unknown>();
  readonly chunks: string[] = [];
  ended = false;
  /** Writes accepted before the sink asks to wait; Infinity = never waits. */
  constructor(private capacity = Infinity) {
    super();
  }
  get body(): string {
    return this.chunks.join('');
  }
  writeHead(status: number, headers: OutgoingHttpHeader[]): this {
    for (let i = 0; i < headers.length; i += 2) this.headers.set(headers[i] as string, headers[i + 1]);
    this.status = status;
    this.headersSent = true;
    return this;
  }
  flushHeaders(): void {
    this.headersSent = true;
  }
  uncork(): void {
    // nothing corked in a fake
  }
  write(chunk: Buffer | string): boolean {
    this.chunks.push(chunk.toString());
    this.capacity--;
    return this.capacity > 0;
  }
  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.chunks.push(chunk.toString());
    this.ended = true;
    this.writableFinished = true;
    this.emit('close');
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    this.emit('close');
    return this;
  }
  /** The client read everything: it can take `more` writes again. */
  drain(more = Infinity): void {
    this.capacity = more;
    this.emit('drain');
  }
}

const LIMITS: FlightLimits = { maxReplayBytes: 1024, maxSubscriberBufferBytes: 256, writeStallMs: 1_000 };
const HEAD = { status: 200, headers: ['content-type', 'text/event-stream'], eventStream: true };

/** An upstream body the test feeds chunk by chunk; `pulled` resolves each time the pump asks for the next one. */
class ScriptedBody implements AsyncIterable<Buffer> {
  private queue: (Buffer | Error | null)[] = [];
  private waiting: Deferred<void> | undefined;
  pulls = 0;
  returned = false;
  push(chunk: string | Error | null): void {
    this.queue.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    this.waiting?.resolve();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        this.pulls++;
        while (this.queue.length === 0) {
          this.waiting = deferred();
          await this.waiting.promise;
        }
        const next = this.queue.shift();
        if (next === null || next === undefined) return;
        if (next instanceof Error) throw next;
        yield next;
      }
    } finally {
      this.returned = true;
    }
  }
}

function source(body: AsyncIterable<Buffer> | Iterable<Buffer>): FlightSource {
  return { head: HEAD, body };
}

/** Resolves after pending promise callbacks ran (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/**
 * A flight whose call took a hold (a remote listener), delivered one chunk to its one local client,
 * and then lost that client: what is left is the hold, its release (`letGo`), the body and the run.
 */
async function heldThenLeft(flight: Flight): Promise<{ body: ScriptedBody; running: Promise<CallOutcome>; letGo: () => void }> {
  const body = new ScriptedBody();
  const sink = new FakeSink();
  void flight.subscribe(sink);
  const release = deferred<() => void>();
  const running = flight.run((scope) => {
    release.resolve(scope.hold());
    return Promise.resolve(source(body));
  });
  const letGo = await release.promise;
  body.push('a');
  await settle();
  sink.destroy();
  return { body, running, letGo };
}

describe('Flight', () => {
  test('every subscriber gets the same head and bytes; the outcome is complete', async () => {
    const flight = new Flight('k', LIMITS);
    const a = new FakeSink();
    const b = new FakeSink();
    const sa = flight.subscribe(a);
    const sb = flight.subscribe(b);
    const outcome = await flight.run(() => Promise.resolve(source([Buffer.from('one '), Buffer.from('two')])));
    assert.deepEqual(await sa, { kind: 'served', complete: true });
    assert.deepEqual(await sb, { kind: 'served', complete: true });
    assert.equal(a.body, 'one two');
    assert.equal(b.body, 'one two');
    assert.equal(a.status, 200);
    assert.equal(outcome.complete, true);
    assert.equal(outcome.subscribers, 2);
  });

  test("each subscriber's head is the answer's headers, then its own pairs, and nothing of another's (one list is reused for every head)", async () => {
    const flight = new Flight('k', LIMITS);
    const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
    const own = [['x-own', 'a', 'x-only-a', '1'], ['x-own', 'b'], undefined];
    const served = sinks.map((sink, i) => flight.subscribe(sink, () => own[i]));
    const head = { status: 200, headers: ['content-type', 'text/event-stream', 'set-cookie', ['c=1', 'c=2']], eventStream: true };
    await flight.run(() => Promise.resolve({ head, body: [Buffer.from('x')] }));
    await Promise.all(served);
    const answer: [string, unknown][] = [['content-type', 'text/event-stream'], ['set-cookie', ['c=1', 'c=2']]];
    assert.deepEqual([...(sinks[0] as FakeSink).headers], [...answer, ['x-own', 'a'], ['x-only-a', '1']]);
    assert.deepEqual([...(sinks[1] as FakeSink).headers], [...answer, ['x-own', 'b']]);
    assert.deepEqual([...(sinks[2] as FakeSink).headers], answer);
  });

  test("the upstream that served the answer is written as x-gateway-upstream after the answer's headers and before the client's own", async () => {
    const flight = new Flight('k', LIMITS);
    const sink = new FakeSink();
    const served = flight.subscribe(sink, () => ['x-gateway-coalesce-role', 'leader']);
    const head = { status: 200, headers: ['content-type', 'application/json', 'request-id', 'req_1'], eventStream: false, upstream: 'primary' };
    await flight.run(() => Promise.resolve({ head, body: [Buffer.from('{}')] }));
    await served;
    assert.deepEqual([...sink.headers], [['content-type', 'application/json'], ['request-id', 'req_1'], ['x-gateway-upstream', 'primary'], ['x-gateway-coalesce-role', 'leader']]);
    assert.deepEqual(head.headers, ['content-type', 'application/json', 'request-id', 'req_1'], "the answer's list is not changed");
  });

  test('a late joiner is caught up from the replay with backpressure, not in one burst, and is not dropped', async () => {
    const flight = new Flight('k', { ...LIMITS, maxReplayBytes: 10_000, maxSubscriberBufferBytes: 10 });
    const body = new ScriptedBody();
    const early = new FakeSink();
    void flight.subscribe(early);
    const running = flight.run(() => Promise.resolve(source(body)));
    for (let i = 0; i < 20; i++) body.push(`chunk-${String(i).padStart(2, '0')};`);
    await until(() => early.chunks.length === 20, 5_000, 'the early subscriber to receive 20 chunks');
    // The late joiner's socket takes 3 writes at a time: far less than the 180-byte replay.
    const late = new FakeSink(3);
    const served = flight.subscribe(late);
    assert.equal(late.chunks.length, 3, 'only what its socket takes is written at join');
    for (let round = 0; round < 10; round++) late.drain(3);
    body.push(null);
    await running;
    late.drain();
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.equal(late.body, early.body, 'the late joiner got every byte, in order');
  });

  test('a lone client that stops reading is dropped at its write-stall deadline, and the upstream call is stopped', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const flight = new Flight('k', { ...LIMITS, writeStallMs: 5_000 });
    const body = new ScriptedBody();
    const stalled = new FakeSink(1);
    const served = flight.subscribe(stalled);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('first');
    await settle();
    body.push('second');
    await settle();
    assert.equal(body.pulls, 1, 'the pump waits for the only subscriber');
    t.mock.timers.tick(4_999);
    await settle();
    assert.equal(stalled.destroyed, false);
    t.mock.timers.tick(1);
    assert.deepEqual(await served, { kind: 'gone', reason: 'stalled' });
    assert.equal(stalled.destroyed, true);
    const outcome: CallOutcome = await running;
    assert.equal(outcome.abandoned, true);
    assert.equal(flight.signal.aborted, true);
    assert.equal(body.returned, true, 'the upstream body was released');
  });

  test('a client that reads again before its deadline is kept', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const flight = new Flight('k', { ...LIMITS, writeStallMs: 5_000 });
    const body = new ScriptedBody();
    const slow = new FakeSink(1);
    const served = flight.subscribe(slow);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('a');
    await settle();
    t.mock.timers.tick(4_000);
    slow.drain(1);
    body.push('b');
    await settle();
    t.mock.timers.tick(4_000);
    slow.drain();
    body.push(null);
    await running;
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.equal(slow.body, 'ab');
  });

  test('with two subscribers, one that falls too far behind is dropped alone; the other goes on', async () => {
    const flight = new Flight('k', { ...LIMITS, maxReplayBytes: 10, maxSubscriberBufferBytes: 20 });
    const body = new ScriptedBody();
    const fast = new FakeSink();
    const slow = new FakeSink(1);
    const fastServed = flight.subscribe(fast);
    const slowServed = flight.subscribe(slow);
    const running = flight.run(() => Promise.resolve(source(body)));
    for (let i = 0; i < 10; i++) body.push('0123456789');
    await settle();
    assert.deepEqual(await slowServed, { kind: 'gone', reason: 'slow' });
    assert.match(slow.body, /event: error/, 'the dropped stream ends with an SSE error event');
    body.push(null);
    await running;
    assert.deepEqual(await fastServed, { kind: 'served', complete: true });
    assert.equal(fast.body, '0123456789'.repeat(10));
    assert.ok(flight.bufferedBytes <= 100);
  });

  test('past the replay cap the flight takes no joiners and keeps only what lagging subscribers need', async () => {
    const group = new FlightGroup({ ...LIMITS, maxReplayBytes: 30 });
    const flight = group.lead('k');
    const body = new ScriptedBody();
    const sink = new FakeSink();
    void flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('0123456789');
    await settle();
    assert.equal(group.find('k'), flight);
    for (let i = 0; i < 5; i++) body.push('0123456789');
    await settle();
    assert.equal(group.find('k'), undefined, 'closed to joiners past the cap');
    assert.equal(flight.bufferedBytes, 0, 'a caught-up subscriber needs nothing kept');
    body.push(null);
    await running;
    assert.equal(flight.finishedReplay(), undefined, 'not kept whole, so never cached');
  });

  test('an abort while the call starts settles every subscriber as gone, and the call sees the signal', async () => {
    const flight = new Flight('k', LIMITS);
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const started = deferred<AbortSignal>();
    const running = flight.run(
      (scope) =>
        new Promise<FlightSource>((_resolve, reject) => {
          started.resolve(scope.signal);
          scope.signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    );
    const signal = await started.promise;
    sink.destroy();
    assert.deepEqual(await served, { kind: 'gone', reason: 'disconnected' });
    const outcome = await running;
    assert.equal(signal.aborted, true);
    assert.equal(outcome.abandoned, true);
    assert.equal(outcome.head, undefined);
  });

  test('a hold keeps the call running without local subscribers; its release stops it', async () => {
    const flight = new Flight('k', LIMITS);
    const { body, running, letGo } = await heldThenLeft(flight);
    body.push('b');
    await settle();
    assert.equal(flight.signal.aborted, false, 'held: still running');
    assert.equal(body.pulls, 3);
    letGo();
    assert.equal(flight.signal.aborted, true);
    body.push('c');
    const outcome = await running;
    assert.equal(outcome.abandoned, true);
  });

  test('finally hooks run once, in reverse order, and a throwing hook or observer cannot escape', async () => {
    const flight = new Flight('k', LIMITS);
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const order: string[] = [];
    const outcome = await flight.run((scope) => {
      scope.finally(() => order.push('outer'));
      scope.finally(() => {
        throw new Error('hook bug');
      });
      scope.finally((o) => order.push(`inner:${String(o.complete)}`));
      scope.observe(() => {
        throw new Error('observer bug');
      });
      return Promise.resolve(source([Buffer.from('x')]));
    });
    assert.deepEqual(order, ['inner:false', 'outer']);
    assert.equal(outcome.complete, false, 'an observer that throws fails the body');
    assert.deepEqual(await served, { kind: 'served', complete: false });
    assert.match(sink.body, /event: error/);
  });

  test('head hooks run once the head is known, in order (those they register too), before any subscriber is written it; later ones at once; never without a head', async () => {
    const flight = new Flight('k', LIMITS);
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const seen: string[] = [];
    await flight.run((scope) => {
      scope.onHead((head) => seen.push(`first: ${head.status}, client head sent ${String(sink.headersSent)}`));
      scope.onHead(() => {
        throw new Error('hook bug');
      });
      scope.onHead(() => {
        seen.push(`second: client head sent ${String(sink.headersSent)}`);
        // What a head hook registers joins the call as usual.
        scope.observe((chunk) => seen.push(`chunk ${chunk.toString()}`));
        scope.finally((o) => seen.push(`finally ${String(o.complete)}`));
        scope.onHead(() => seen.push('registered by a head hook'));
      });
      return Promise.resolve(source([Buffer.from('x')]));
    });
    flight.onHead((head) => seen.push(`late: ${head.status}`));
    assert.deepEqual(seen, ['first: 200, client head sent false', 'second: client head sent false', 'registered by a head hook', 'chunk x', 'finally true', 'late: 200']);
    assert.deepEqual(await served, { kind: 'served', complete: true }, 'a throwing head hook cannot escape');

    const failed = new Flight('k', LIMITS);
    let ran = false;
    await failed.run((scope) => {
      scope.onHead(() => (ran = true));
      return Promise.reject(new Error('refused'));
    });
    assert.equal(ran, false);
  });

  test('a failure before the head reaches every subscriber as that error', async () => {
    const flight = new Flight('k', LIMITS);
    const a = new FakeSink();
    const served = flight.subscribe(a);
    const error = new Error('refused');
    const outcome = await flight.run(() => Promise.reject(error));
    assert.deepEqual(await served, { kind: 'failed', error });
    assert.equal(outcome.error, error);
    assert.equal(outcome.abandoned, false);
  });
});

/**
 * A Readable upstream body (what undici, a decoder or a provider translation hands the flight) that
 * the test pushes chunk by chunk. It refuses async iteration: the flight must read it by its events
 * (an async iterator costs promises and listeners per chunk on the hot path).
 */
class PushedBody extends Readable {
  iterated = false;
  override _read(): void {
    // The test pushes.
  }
  override [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    this.iterated = true;
    throw new Error('the flight must not async-iterate a Readable body');
  }
}

/** A flight with one client reading a Readable body by its events, after the body's first chunk ('a') reached the client. */
async function pushedFirstChunk(): Promise<{ flight: Flight; body: PushedBody; sink: FakeSink; served: Promise<SubscriberOutcome>; running: Promise<CallOutcome> }> {
  const flight = new Flight('k', LIMITS);
  const body = new PushedBody();
  const sink = new FakeSink();
  const served = flight.subscribe(sink);
  const running = flight.run(() => Promise.resolve(source(body)));
  body.push('a');
  await until(() => sink.body === 'a', 5_000, 'the first chunk');
  return { flight, body, sink, served, running };
}

describe('Flight reading a Readable body (by its events)', () => {
  test('every subscriber gets every byte in order; the body is never async-iterated; the outcome is complete', async () => {
    const flight = new Flight('k', LIMITS);
    const body = new PushedBody();
    const a = new FakeSink();
    const b = new FakeSink();
    const sa = flight.subscribe(a);
    const sb = flight.subscribe(b);
    const seen: string[] = [];
    const running = flight.run((scope) => {
      scope.observe((chunk) => seen.push(chunk.toString()));
      return Promise.resolve(source(body));
    });
    body.push('one ');
    body.push('two');
    body.push(null);
    const outcome = await running;
    assert.equal(body.iterated, false);
    assert.equal(outcome.complete, true);
    assert.equal(outcome.error, undefined);
    assert.deepEqual(await sa, { kind: 'served', complete: true });
    assert.deepEqual(await sb, { kind: 'served', complete: true });
    assert.equal(a.body, 'one two');
    assert.equal(b.body, 'one two');
    assert.deepEqual(seen, ['one ', 'two'], 'observers see each chunk once, in order');
    assert.equal(flight.finishedReplay()?.body.map(String).join(''), 'one two', 'the replay is kept whole');
  });

  test('a lone client that asks to wait pauses the body; its drain resumes it', async () => {
    const flight = new Flight('k', LIMITS);
    const body = new PushedBody();
    const sink = new FakeSink(1);
    const served = flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('a');
    await until(() => sink.body === 'a', 5_000, 'the first chunk');
    assert.equal(body.isPaused(), true, 'nobody can take more: the body is paused');
    body.push('b');
    await settle();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sink.body, 'a', 'nothing more is read while the client waits');
    sink.drain();
    await until(() => sink.body === 'ab', 5_000, 'the second chunk after the drain');
    body.push(null);
    assert.equal((await running).complete, true);
    assert.deepEqual(await served, { kind: 'served', complete: true });
  });

  test('the last client leaving stops the call and destroys the body; the outcome is abandoned', async () => {
    const { flight, body, sink, served, running } = await pushedFirstChunk();
    sink.destroy();
    assert.deepEqual(await served, { kind: 'gone', reason: 'disconnected' });
    assert.equal(flight.signal.aborted, true);
    body.push('b');
    const outcome = await running;
    assert.equal(outcome.abandoned, true);
    assert.equal(outcome.complete, false);
    assert.equal(body.destroyed, true, 'a read that stopped early closes its body');
  });

  test('a body error mid-stream fails the answer: the client gets an SSE error event and the outcome that error', async () => {
    const { body, sink, served, running } = await pushedFirstChunk();
    const broken = new Error('socket reset');
    body.destroy(broken);
    const outcome = await running;
    assert.equal(outcome.error, broken);
    assert.equal(outcome.complete, false);
    assert.equal(outcome.abandoned, false);
    assert.deepEqual(await served, { kind: 'served', complete: false });
    assert.match(sink.body, /^aevent: error/);
  });

  test('a body closed before its end fails like a premature close; an observer that throws fails the body and closes it', async () => {
    const cut = new Flight('k', LIMITS);
    const cutBody = new PushedBody();
    void cut.subscribe(new FakeSink());
    const cutRun = cut.run(() => Promise.resolve(source(cutBody)));
    cutBody.push('a');
    await settle();
    cutBody.destroy();
    const cutOutcome = await cutRun;
    assert.equal((cutOutcome.error as { code?: string }).code, 'ERR_STREAM_PREMATURE_CLOSE');
    assert.equal(cutOutcome.complete, false);

    const flight = new Flight('k', LIMITS);
    const body = new PushedBody();
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const bug = new Error('observer bug');
    const running = flight.run((scope) => {
      scope.observe(() => {
        throw bug;
      });
      return Promise.resolve(source(body));
    });
    body.push('x');
    const outcome = await running;
    assert.equal(outcome.error, bug);
    assert.equal(body.destroyed, true);
    assert.deepEqual(await served, { kind: 'served', complete: false });
  });
});

/** undici's side of an `anthropic` answer: a DirectBody at its head, driven by the test through undici's (legacy) handler calls. */
function directAnswer() {
  const controller = {
    paused: false,
    resumes: 0,
    aborted: false,
    reason: null as Error | null,
    pause() {
      this.paused = true;
    },
    resume() {
      this.paused = false;
      this.resumes++;
    },
    abort(reason: Error) {
      this.aborted = true;
      this.reason = reason;
      body.onError(reason);
    },
  };
  const body: DirectBody = new DirectBody(() => undefined, () => undefined, null, undefined);
  body.onConnect((reason) => controller.abort(reason));
  body.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/event-stream')], () => controller.resume());
  const listeners: string[] = [];
  const on = body.on.bind(body) as (event: string, listener: () => void) => DirectBody;
  (body as unknown as { on: (event: string, listener: () => void) => DirectBody }).on = (event, listener) => {
    listeners.push(event);
    return on(event, listener);
  };
  return { body, controller, listeners, data: (text: string) => {
      // undici's core pauses the connection when onData answers false.
      if (!body.onData(Buffer.from(text))) controller.pause();
    },
    end: () => body.onComplete(),
  };
}

describe('Flight reading an anthropic answer (the flight is the DirectBody\'s reader)', () => {
  test('no listener is registered; a lone blocked client pauses undici, its drain resumes it; every byte, complete', async () => {
    const flight = new Flight('k', LIMITS);
    const d = directAnswer();
    const sink = new FakeSink(1);
    const served = flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(d.body)));
    await settle();
    d.data('a');
    assert.equal(sink.body, 'a');
    assert.equal(d.controller.paused, true, 'nobody can take more: undici is paused');
    d.data('b');
    assert.equal(sink.body, 'a', 'kept, not written, while the client waits');
    sink.drain();
    await until(() => sink.body === 'ab', 5_000, 'the kept chunk after the drain');
    await until(() => d.controller.resumes === 1, 5_000, 'undici resumed');
    d.data('c');
    d.end();
    const outcome = await running;
    assert.equal(outcome.complete, true);
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.equal(sink.body, 'abc');
    assert.deepEqual(d.listeners, [], 'read by push: no listener, no closure per call');
  });

  test('the last client leaving aborts the request through the controller; the outcome is abandoned', async () => {
    const flight = new Flight('k', LIMITS);
    const d = directAnswer();
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const running = flight.run((scope) => {
      // As UpstreamClient.sendDirect wires it: the call's stop stops the request.
      scope.stop.once('abort', () => d.body.stop(scope.stop.reason as Error));
      return Promise.resolve(source(d.body));
    });
    await settle();
    d.data('a');
    sink.destroy();
    assert.deepEqual(await served, { kind: 'gone', reason: 'disconnected' });
    const outcome = await running;
    assert.equal(outcome.abandoned, true);
    assert.equal(d.controller.aborted, true);
  });
});

/** A FakeSink that records what reached it, in order: a head, a head sent alone, each write, each uncork (`sent`). */
class RecordingSink extends FakeSink {
  readonly ops: string[] = [];
  override writeHead(status: number, headers: OutgoingHttpHeader[]): this {
    this.ops.push('head');
    return super.writeHead(status, headers);
  }
  override flushHeaders(): void {
    this.ops.push('head alone');
    super.flushHeaders();
  }
  override write(chunk: Buffer | string): boolean {
    this.ops.push(`write ${chunk.toString()}`);
    return super.write(chunk);
  }
  override uncork(): void {
    this.ops.push('sent');
  }
}

/** Resolves once every tick and promise callback queued so far has run (setImmediate runs after them). */
const afterTicks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("an event stream's head: with its first event when that is at hand, else alone at once; each flush sent at once", () => {
  test('the first event came with the head (one upstream read): the head is not sent alone, it goes in that event\'s write', async () => {
    const flight = new Flight('k', LIMITS);
    const d = directAnswer();
    d.data('event: message_start\n\n');
    const sink = new RecordingSink();
    const served = flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(d.body)));
    await afterTicks();
    assert.deepEqual(sink.ops, ['head', 'write event: message_start\n\n', 'sent']);
    d.data('event: ping\n\n');
    d.end();
    assert.equal((await running).complete, true);
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.deepEqual(sink.ops, ['head', 'write event: message_start\n\n', 'sent', 'write event: ping\n\n', 'sent']);
  });

  test('nothing came with the head: the head is sent alone before anything else can run, the first event follows', async () => {
    const flight = new Flight('k', LIMITS);
    const d = directAnswer();
    const sink = new RecordingSink();
    const served = flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(d.body)));
    await afterTicks();
    assert.deepEqual(sink.ops, ['head', 'head alone'], 'the client learns the answer started before any event');
    d.data('event: message_start\n\n');
    d.end();
    await running;
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.deepEqual(sink.ops, ['head', 'head alone', 'write event: message_start\n\n', 'sent']);
  });

  test('a joiner gets its head with the replay when there is one, and alone when the replay is empty', async () => {
    const flight = new Flight('k', LIMITS);
    const d = directAnswer();
    const leader = new RecordingSink();
    void flight.subscribe(leader);
    const running = flight.run(() => Promise.resolve(source(d.body)));
    await afterTicks();
    const early = new RecordingSink();
    void flight.subscribe(early);
    assert.deepEqual(early.ops, ['head', 'head alone']);
    d.data('one;');
    const late = new RecordingSink();
    const served = flight.subscribe(late);
    assert.deepEqual(late.ops, ['head', 'write one;', 'sent']);
    d.end();
    await running;
    assert.deepEqual(await served, { kind: 'served', complete: true });
  });
});

describe('FlightGroup', () => {
  test('forget is identity-checked: a finished flight never removes its successor', async () => {
    const group = new FlightGroup(LIMITS);
    const first = group.lead('k');
    const firstBody = new ScriptedBody();
    void first.subscribe(new FakeSink());
    const firstRun = first.run(() => Promise.resolve(source(firstBody)));
    // The first flight stops taking joiners (its replay overflowed); a successor leads.
    firstBody.push('x'.repeat(LIMITS.maxReplayBytes + 1));
    await settle();
    const second = group.lead('k');
    assert.notEqual(second, first);
    firstBody.push(null);
    await firstRun;
    group.forget('k', first);
    assert.equal(group.find('k'), second);
  });

  test('describe: the joinable flights with their label, subscribers and bytes so far; at most MAX_DESCRIBED_FLIGHTS', async () => {
    const group = new FlightGroup(LIMITS);
    const flight = group.lead('k');
    flight.label = { mode: 'agent', model: 'claude-sonnet-4-5', tenant: 't-1', ledAt: 1_000 };
    const body = new ScriptedBody();
    void flight.subscribe(new FakeSink());
    void flight.subscribe(new FakeSink());
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('abcd');
    await settle();
    assert.deepEqual(group.describe(3_000), [{ mode: 'agent', model: 'claude-sonnet-4-5', tenant: 't-1', subscribers: 2, bytes: 4, ageSeconds: 2 }]);
    body.push(null);
    await running;
    assert.deepEqual(group.describe(), [], 'a finished flight is not listed');
    for (let i = 0; i < MAX_DESCRIBED_FLIGHTS + 50; i++) group.lead(`many-${i}`);
    assert.equal(group.describe().length, MAX_DESCRIBED_FLIGHTS);
  });
});

describe('rejoin (COALESCE_REJOIN_MS)', () => {
  const REJOIN = { ...LIMITS, rejoinMs: 5_000 };

  /** A flight of `group` whose only client took the first chunk and then disconnected. */
  async function abandoned(group: FlightGroup, key = 'k'): Promise<{ flight: Flight; body: ScriptedBody; running: Promise<CallOutcome>; first: FakeSink }> {
    const flight = group.lead(key);
    const body = new ScriptedBody();
    const first = new FakeSink();
    const served = flight.subscribe(first);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('one;');
    await settle();
    first.destroy();
    assert.deepEqual(await served, { kind: 'gone', reason: 'disconnected' });
    return { flight, body, running, first };
  }

  test('a client that disconnects mid-stream and retries within the window rejoins the same call and gets every byte', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup(REJOIN);
    const { flight, body, running } = await abandoned(group);
    assert.equal(flight.signal.aborted, false, 'the call goes on while it waits');
    assert.equal(group.waitingForRejoin, 1);
    body.push('two;');
    await settle();
    t.mock.timers.tick(4_999);
    const again = group.find('k');
    assert.equal(again, flight, 'the identical request finds the waiting flight');
    const retry = new FakeSink();
    const served = again.subscribe(retry);
    assert.equal(group.waitingForRejoin, 0, 'a rejoin ends the wait');
    t.mock.timers.tick(10_000);
    assert.equal(flight.signal.aborted, false, 'no window runs any more');
    body.push('three;');
    body.push(null);
    const outcome = await running;
    assert.deepEqual(await served, { kind: 'served', complete: true });
    assert.equal(retry.body, 'one;two;three;', 'the whole answer, replayed from its first byte');
    assert.equal(outcome.complete, true);
    assert.equal(outcome.subscribers, 2);
  });

  test('nobody returns: the upstream call is aborted when the window ends, and the flight is forgotten', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup(REJOIN);
    const { flight, body, running } = await abandoned(group);
    t.mock.timers.tick(4_999);
    await settle();
    assert.equal(flight.signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(flight.signal.aborted, true, 'the upstream sees the abort');
    assert.equal(group.find('k'), undefined);
    assert.equal(group.size, 0);
    assert.equal(group.waitingForRejoin, 0);
    // The fake body does not watch the signal (undici's does): the next chunk shows the pump it stopped.
    body.push('late');
    const outcome = await running;
    assert.equal(outcome.abandoned, true);
    assert.equal(body.returned, true, 'the upstream body was released');
  });

  test('off (0): the call is aborted the moment its last client leaves, as before', async () => {
    const group = new FlightGroup({ ...LIMITS, rejoinMs: 0 });
    const { flight, body, running } = await abandoned(group);
    assert.equal(flight.signal.aborted, true);
    assert.equal(group.find('k'), undefined);
    body.push('late');
    assert.equal((await running).abandoned, true);
  });

  test('a replay that overflows while waiting ends the wait and aborts at once: a rejoiner could not get every byte', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup({ ...REJOIN, maxReplayBytes: 30 });
    const { flight, body, running } = await abandoned(group);
    assert.equal(flight.signal.aborted, false);
    body.push('x'.repeat(40));
    await settle();
    assert.equal(flight.signal.aborted, true);
    assert.equal(group.find('k'), undefined);
    assert.equal(group.waitingForRejoin, 0);
    body.push('late');
    assert.equal((await running).abandoned, true);
  });

  test('an already overflowed replay never waits', async () => {
    const group = new FlightGroup({ ...REJOIN, maxReplayBytes: 30 });
    const flight = group.lead('k');
    const body = new ScriptedBody();
    const sink = new FakeSink();
    const served = flight.subscribe(sink);
    const running = flight.run(() => Promise.resolve(source(body)));
    body.push('x'.repeat(40));
    await settle();
    sink.destroy();
    await served;
    assert.equal(flight.signal.aborted, true);
    body.push('late');
    assert.equal((await running).abandoned, true);
  });

  test('an answer that completes during the window stays joinable until it ends, then goes', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup(REJOIN);
    const { flight, body, running } = await abandoned(group);
    body.push('two;');
    body.push(null);
    const outcome = await running;
    assert.equal(outcome.complete, true, 'the call ran to its end for nobody');
    const again = group.find('k');
    assert.equal(again, flight);
    const retry = new FakeSink();
    assert.deepEqual(await again.subscribe(retry), { kind: 'served', complete: true });
    assert.equal(retry.body, 'one;two;');
    t.mock.timers.tick(5_000);
    assert.equal(group.find('k'), undefined, 'the window ended');
    assert.equal(group.waitingForRejoin, 0);
  });

  test('at most maxRejoinWaiting flights wait; past it an abandoned call is aborted at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup({ ...REJOIN, maxRejoinWaiting: 1 });
    const one = await abandoned(group, 'one');
    const two = await abandoned(group, 'two');
    assert.equal(one.flight.signal.aborted, false);
    assert.equal(two.flight.signal.aborted, true);
    t.mock.timers.tick(5_000);
    assert.equal(one.flight.signal.aborted, true);
    one.body.push('late');
    two.body.push('late');
    await Promise.all([one.running, two.running]);
  });

  test('a held call (a remote listener) waits only once the hold is released', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const group = new FlightGroup(REJOIN);
    const flight = group.lead('k');
    const { body, running, letGo } = await heldThenLeft(flight);
    assert.equal(group.waitingForRejoin, 0, 'held: the holder decides');
    letGo();
    assert.equal(flight.signal.aborted, false, 'released: now it waits for a rejoin');
    assert.equal(group.waitingForRejoin, 1);
    t.mock.timers.tick(5_000);
    assert.equal(flight.signal.aborted, true);
    body.push('late');
    await running;
  });
});
