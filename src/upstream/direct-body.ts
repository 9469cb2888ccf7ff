import { Readable } from 'node:stream';
import { errors as undiciErrors, type RawHeaderList } from './undici-parts.js';
import { AnswerHead } from './headers.js';

/**
 * Bytes kept for a consumer that is not reading (not flowing yet, or paused) before undici is asked
 * to pause the connection: node's default highWaterMark for a byte stream, as undici's own body has.
 */
const HIGH_WATER_MARK = 64 * 1024;

/** The answer's head, read from the raw list the dispatch handler received (no headers object). */
export type DirectHead = AnswerHead;

/**
 * The one reader a body pushes to without listeners or a stream (the flight): no closure per call.
 * `bodyData` gets each chunk once, in order (it may pause or destroy the body); `bodyEnd` is called
 * once: undefined when every chunk was delivered, else why the body failed (undici's error, or a
 * premature close when it was destroyed without one).
 */
export interface BodyReader {
  bodyData(chunk: Buffer): void;
  bodyEnd(error: Error | undefined): void;
}

type Listener = () => void;
type ErrorListener = (err: Error) => void;
type DataListener = (chunk: Buffer) => void;

/**
 * One upstream request's dispatch handler and its answer's body, in one object: the body's bytes go
 * from undici's parser to whoever reads them with no stream in between (undici's `request()` puts a
 * Readable, an async resource and a headers object per request there).
 *
 * The handler implements undici's legacy interface (`onConnect`, `onHeaders`, `onData`, `onComplete`,
 * `onError`), which undici's core calls as it is: the new one (`onRequestStart`...) is served through a
 * wrapper that builds a controller and a headers object per answer (undici's `parseHeaders`); here the
 * head is read from undici's raw list (AnswerHead). Backpressure as undici's core defines it: `onData`
 * returning false pauses the connection; the `resume` given with the head resumes it.
 *
 * The body offers the part of node's Readable its readers use: `on('data' | 'end' | 'error' | 'close')`
 * (one data listener: the body has one reader),
 * `pause`, `resume` (with no data listener: the rest is discarded), `destroy`; anything that needs a
 * real stream (a decoder, a peek, a whole read) gets one from `readable()` (also its async iterator).
 *
 * Invariants:
 * - Chunks reach the data listener in order, each once. While nobody reads (no data listener yet,
 *   or paused), chunks are kept, at most HIGH_WATER_MARK bytes before undici is told to pause; undici
 *   resumes only after the kept chunks were delivered.
 * - Exactly one of `end` (every chunk delivered) or `error` is emitted, then `close`; `destroy()` without
 *   an error emits only `close`. Never from inside a listener's registration (always on a later tick).
 * - The connection's permit (`release`) is given back exactly once: when undici completes or fails the
 *   request (a destroy before the end aborts it, and undici then fails it).
 */
export class DirectBody implements AsyncIterable<Buffer> {
  /** undici's abort of the request, from its start (`onConnect`); called at most once. */
  private abortUpstream: ((reason: Error) => void) | undefined;
  /** undici's resume of a paused connection, with the head. */
  private resumeUpstream: (() => void) | undefined;
  /** undici was told to pause (`onData` returned false): resumed once the kept chunks are delivered and the reader reads. */
  private upstreamPaused = false;
  /** Why the request must stop (the call's stop fired, or destroyed) before undici connected it. */
  private abortReason: Error | undefined;
  private dataListener: DataListener | undefined;
  private reader: BodyReader | undefined;
  /** The reader was told the end (`bodyEnd`). */
  private told = false;
  private endListeners: Listener[] | undefined;
  private errorListeners: ErrorListener[] | undefined;
  private closeListeners: Listener[] | undefined;
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  private flowing = false;
  private paused = false;
  private deliverQueued = false;
  /** undici's verdict: the body was received whole, or why it failed. */
  private received: true | Error | undefined;
  /** The head arrived (`onHead` was told). */
  private headed = false;
  private ended = false;
  private closed = false;
  destroyed = false;

  constructor(
    /** Told once: the head, or why there is none (undici's error, as undici reported it). */
    private readonly onHead: (err: Error | undefined, head: DirectHead | undefined) => void,
    /** Gives the connection's permit back: called exactly once. */
    private readonly release: () => void,
    /** The request body, destroyed when the request fails (as undici's `request()` does). */
    private readonly requestBody: unknown,
    /** Unsubscribes from the call's stop: called when undici is done with the request. */
    private unsubscribe: (() => void) | undefined,
  ) {}

  /** The call's stop fired: a request still waiting for its head fails; a body being read errors. */
  stop(reason: Error): void {
    if (this.received !== undefined) return;
    if (this.headed) this.destroy(reason);
    else if (this.abortUpstream !== undefined) this.abort(reason);
    else this.abortReason ??= reason;
  }

  // The dispatch handler (undici's legacy handler interface, which its core calls directly).

  onConnect(abort: (reason: Error) => void): void {
    if (this.abortReason !== undefined) abort(this.abortReason);
    else this.abortUpstream = abort;
  }

  /** Returns false to pause the connection (never at the head: nobody has read yet). */
  onHeaders(statusCode: number, rawHeaders: RawHeaderList, resume: () => void): boolean {
    if (statusCode < 200) return true; // an informational head: the answer's comes later
    this.resumeUpstream = resume;
    this.headed = true;
    this.onHead(undefined, new AnswerHead(statusCode, rawHeaders));
    return true;
  }

  /** Returns false while the connection is to stay paused: the reader paused, or 64 KiB are kept for nobody reading. */
  onData(chunk: Buffer): boolean {
    this.take(chunk);
    return !this.upstreamPaused;
  }

  private take(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.flowing && !this.paused && this.pending === undefined && this.hasReader()) {
      this.emitData(chunk);
      // The reader may have paused (or stopped) while taking the chunk.
      if (this.isPaused()) this.upstreamPaused = true;
      return;
    }
    if (this.flowing && !this.paused && !this.hasReader()) return; // resumed with nobody reading: discarded
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= HIGH_WATER_MARK || this.paused) this.upstreamPaused = true;
  }

  onComplete(): void {
    this.finishUpstream(true);
    // Nobody reads yet: whoever starts reading (`on('data')`, `pushTo`, `resume`) schedules the delivery, and the end with it.
    if (this.flowing) this.scheduleDelivery();
  }

  onError(err: Error): void {
    if (this.received !== undefined) return;
    this.finishUpstream(err);
    const body = this.requestBody as { destroy?: (err: Error) => void; on?: (e: string, l: () => void) => void } | null;
    if (body !== null && typeof body.destroy === 'function' && typeof body.on === 'function') {
      body.on('error', () => undefined);
      body.destroy(err);
    }
    if (!this.headed) {
      this.onHead(err, undefined);
      return;
    }
    if (this.destroyed) return;
    // As node's stream destroy: what was kept and not read is dropped.
    this.pending = undefined;
    this.pendingBytes = 0;
    this.destroyed = true;
    process.nextTick(emitErrorAndClose, this, err);
  }

  /** Aborts the request once (undici then calls `onError`). */
  private abort(reason: Error): void {
    const abort = this.abortUpstream;
    if (abort === undefined) return;
    this.abortUpstream = undefined;
    abort(reason);
  }

  private finishUpstream(verdict: true | Error): void {
    this.received = verdict;
    this.release();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  // The body (the part of node's Readable its readers use).

  on(event: 'data', listener: DataListener): this;
  on(event: 'end' | 'close', listener: Listener): this;
  on(event: 'error', listener: ErrorListener): this;
  on(event: 'data' | 'end' | 'close' | 'error', listener: DataListener | Listener | ErrorListener): this {
    switch (event) {
      case 'data':
        // One reader: a second one would silently take the first one's bytes.
        if (this.hasReader()) throw new Error('DirectBody: a body has one reader');
        this.dataListener = listener as DataListener;
        this.flowing = true;
        this.paused = false;
        this.scheduleDelivery();
        break;
      case 'end':
        (this.endListeners ??= []).push(listener as Listener);
        break;
      case 'error':
        (this.errorListeners ??= []).push(listener as ErrorListener);
        break;
      case 'close':
        (this.closeListeners ??= []).push(listener as Listener);
        break;
    }
    return this;
  }

  /** Makes `reader` the body's one reader (instead of a data listener): delivery starts on a later tick. */
  pushTo(reader: BodyReader): void {
    if (this.hasReader()) throw new Error('DirectBody: a body has one reader');
    this.reader = reader;
    this.flowing = true;
    this.paused = false;
    this.scheduleDelivery();
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  /** Reads on; with no data listener, what comes is discarded (a body nobody wants goes back to the pool). */
  resume(): this {
    this.flowing = true;
    this.paused = false;
    this.scheduleDelivery();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** Stops reading: a request not yet received whole is aborted (undici frees its connection). */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (this.received === undefined) {
      const reason = err ?? new undiciErrors.RequestAbortedError();
      if (this.abortUpstream !== undefined) this.abort(reason);
      else this.abortReason ??= reason;
    }
    if (err !== undefined) process.nextTick(emitErrorAndClose, this, err);
    else process.nextTick(emitClose, this);
    return this;
  }

  /** The body as a node Readable (for decoders, peeks and whole reads): this body is its source from now on. */
  readable(): Readable {
    const stream = new Readable({
      read: () => {
        this.resume();
      },
      destroy: (err, callback) => {
        this.destroy(err ?? undefined);
        callback(err);
      },
    });
    this.on('data', (chunk) => {
      if (!stream.push(chunk)) this.pause();
    });
    this.on('end', () => stream.push(null));
    this.on('error', (err) => stream.destroy(err));
    return stream;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.readable()[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Listeners may change these while being called: read through methods, not narrowed fields. */
  private reading(): boolean {
    return this.flowing && !this.paused && !this.destroyed;
  }

  private isDestroyed(): boolean {
    return this.destroyed;
  }

  private scheduleDelivery(): void {
    if (this.deliverQueued) return;
    this.deliverQueued = true;
    process.nextTick(deliver, this);
  }

  /** Delivers kept chunks while someone reads; then the end, or undici's resume. (On a tick of its own.) */
  deliverKept(): void {
    this.deliverQueued = false;
    if (this.destroyed) return;
    const pending = this.pending;
    if (pending !== undefined) {
      while (pending.length > 0 && this.reading()) {
        const chunk = pending.shift() as Buffer;
        this.pendingBytes -= chunk.length;
        this.emitData(chunk);
      }
      if (pending.length > 0 || this.isDestroyed()) return;
      this.pending = undefined;
    }
    if (!this.flowing) return;
    if (this.received === true) {
      if (this.ended) return;
      this.ended = true;
      this.tell(undefined);
      for (const listener of this.endListeners ?? []) listener();
      emitClose(this);
      return;
    }
    if (this.upstreamPaused && !this.paused) {
      this.upstreamPaused = false;
      this.resumeUpstream?.();
    }
  }

  private hasReader(): boolean {
    return this.dataListener !== undefined || this.reader !== undefined;
  }

  private emitData(chunk: Buffer): void {
    const reader = this.reader;
    if (reader !== undefined) reader.bodyData(chunk);
    else this.dataListener?.(chunk);
  }

  private tell(error: Error | undefined): void {
    if (this.told || this.reader === undefined) return;
    this.told = true;
    this.reader.bodyEnd(error);
  }

  emitError(err: Error): void {
    this.tell(err);
    for (const listener of this.errorListeners ?? []) listener(err);
  }

  emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    // Closed with neither an end nor an error (destroyed without one): what async iteration calls a premature close.
    if (!this.told && this.reader !== undefined) this.tell(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    for (const listener of this.closeListeners ?? []) listener();
  }
}

function deliver(body: DirectBody): void {
  body.deliverKept();
}

function emitErrorAndClose(body: DirectBody, err: Error): void {
  body.emitError(err);
  body.emitClose();
}

function emitClose(body: DirectBody): void {
  body.emitClose();
}
