import { write as fsWrite, writeSync } from 'node:fs';

export interface BatchedWriterOptions {
  /** File descriptor to write to (1 = stdout). */
  fd: number;
  /** A batch is written once this many characters wait... */
  minBatch: number;
  /** ...or every this many milliseconds, whichever comes first. */
  flushMs: number;
  /** Characters held at most while the reader does not keep up; lines past it are dropped (and counted). */
  maxBuffered: number;
  /**
   * Write batches synchronously: for files and devices, which never make a writer wait for a reader
   * (one write call per batch, no hand-off to libuv's thread pool). Pipes and sockets are written
   * asynchronously: a stalled reader must never block the event loop.
   */
  sync?: boolean;
}

/** Errors after which the reader is gone for good: stop trying, never crash or wedge. */
const GONE = new Set(['EPIPE', 'EBADF', 'ECONNRESET', 'EINVAL']);
/** A non-blocking pipe that is full: try again shortly. */
const RETRY_MS = 10;

/**
 * The log destination: lines are kept as they come (one array push each) and written in batches,
 * joined once per batch: to a pipe or socket through an asynchronous fs write (libuv's thread pool),
 * so the event loop never blocks on a slow log reader; to a file or device with one synchronous
 * write (`sync`). Measured against pino's own asynchronous destination (sonic-boom),
 * which concatenates and re-measures its buffer on every line, the per-line cost went from about
 * 4.5 µs to under 1 µs (benchmarks/HISTORY.md, 2026-11-24 night session); sonic-boom's buffer is
 * also unbounded when stdout stalls.
 *
 * Bounded: past `maxBuffered` characters waiting, new lines are dropped and counted, and one line
 * saying how many were lost is written first once the reader drains again. A reader that is gone
 * (EPIPE) ends writing for good. `flushSync` writes what is left at exit.
 */
export class BatchedWriter {
  private lines: string[] = [];
  private chars = 0;
  private writing = false;
  private gone = false;
  private dropped = 0;
  private waiters: ((err?: Error) => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: BatchedWriterOptions) {
    this.timer = setInterval(() => this.flush(), options.flushMs);
    this.timer.unref();
  }

  /** Lines dropped since the reader last kept up. */
  get droppedLines(): number {
    return this.dropped;
  }

  write(line: string): boolean {
    if (this.gone) return true;
    if (this.chars + line.length > this.options.maxBuffered) {
      this.dropped++;
      return false;
    }
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.options.minBatch) this.flush();
    return true;
  }

  /** Writes what waits; `done` runs once everything written before the call has reached the fd (or failed). */
  flush(done?: (err?: Error) => void): void {
    if (done !== undefined) this.waiters.push(done);
    if (this.writing) return; // the write in progress continues with what waits, then calls the waiters
    if (this.gone || this.lines.length === 0) {
      this.settle();
      return;
    }
    this.writing = true;
    const data = Buffer.from(this.take());
    const rest = this.options.sync === true ? this.writeNow(data) : data;
    if (rest === undefined) {
      this.writing = false;
      this.settle();
    } else this.writeAll(rest);
  }

  /** Writes synchronously as far as the fd takes it; returns what is left (undefined when done or the reader is gone). */
  private writeNow(data: Buffer): Buffer | undefined {
    let rest = data;
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(this.options.fd, rest));
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EAGAIN') return rest; // the asynchronous path waits for the reader
      if (GONE.has(code)) this.gone = true;
      return undefined;
    }
  }

  /** Writes everything left, synchronously (process exit). */
  flushSync(): void {
    if (this.gone || this.lines.length === 0) return;
    let data = Buffer.from(this.take());
    for (let tries = 0; data.length > 0 && tries < 100; tries++) {
      try {
        data = data.subarray(writeSync(this.options.fd, data));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      }
    }
  }

  /** Stops the periodic flush (its only timer); lines still waiting go out with the next `flush`. */
  close(): void {
    clearInterval(this.timer);
  }

  private take(): string {
    let text = this.lines.join('');
    if (this.dropped > 0) {
      text = `{"level":"warn","time":"${new Date().toISOString()}","msg":"log lines dropped: the log reader did not keep up","dropped":${this.dropped}}\n${text}`;
      this.dropped = 0;
    }
    this.lines = [];
    this.chars = 0;
    return text;
  }

  private settle(err?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const done of waiters) done(err);
  }

  private writeAll(data: Buffer): void {
    fsWrite(this.options.fd, data, 0, data.length, null, (err, written) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.writeAll(data), RETRY_MS).unref();
          return;
        }
        if (GONE.has(err.code ?? '')) {
          this.gone = true;
          this.lines = [];
          this.chars = 0;
        }
        this.writing = false;
        this.settle(err);
        return;
      }
      if (written < data.length) {
        this.writeAll(data.subarray(written));
        return;
      }
      this.writing = false;
      // Lines that came meanwhile: a full batch, or anyone waiting for them, writes them now.
      if (this.chars >= this.options.minBatch || this.waiters.length > 0) this.flush();
    });
  }
}
