import type { ServerResponse } from 'node:http';
import { constants, createGzip, type Gzip } from 'node:zlib';
import type { Answer, Usage } from './answers.js';

/** One server-sent event as the API frames it: `event: <name>\ndata: <json>\n\n`, `data.type` equal to the name. */
export interface SseEvent {
  name: string;
  data: unknown;
}

export function formatEvent(event: SseEvent): string {
  return `event: ${event.name}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** Usage message_start reports: the prompt side in full, one output token. */
export function startUsage(usage: Usage): Usage {
  return { ...usage, output_tokens: 1 };
}

/** The events of a streamed answer in the real API's order; message_delta carries CUMULATIVE usage. */
export function messageEvents(answer: Answer, model: string): SseEvent[] {
  const { usage } = answer;
  return [
    {
      name: 'message_start',
      data: {
        type: 'message_start',
        message: { id: answer.id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage(usage) },
      },
    },
    { name: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
    { name: 'ping', data: { type: 'ping' } },
    ...answer.pieces.map((text) => ({ name: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } } })),
    { name: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    {
      name: 'message_delta',
      data: {
        type: 'message_delta',
        delta: { stop_reason: answer.stopReason, stop_sequence: null },
        usage: {
          input_tokens: usage.input_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
          output_tokens: usage.output_tokens,
        },
      },
    },
    { name: 'message_stop', data: { type: 'message_stop' } },
  ];
}

/** Where a handler writes a streamed answer's SSE text; providers' framings re-frame it (provider-framing.ts). */
export interface EventWriter {
  write(chunk: string): Promise<boolean>;
  end(): void;
  destroy(): void;
}

/**
 * Writes a response body chunk by chunk, optionally through gzip (flushed after every chunk so each
 * chunk is decodable on arrival). write() resolves once its bytes reached the socket (and, when the
 * response reported backpressure, once it drained), so every chunk leaves as its own write and a
 * later destroy() cannot discard what was already written. Once the client is gone every write
 * reports false and nothing more is written.
 */
export class ChunkWriter implements EventWriter {
  private readonly gzip: Gzip | undefined;
  /** Settles when the compressed bytes handed to the response so far reached the socket. */
  private compressedFlushed: Promise<void> = Promise.resolve();

  constructor(
    private readonly res: ServerResponse,
    compress: boolean,
  ) {
    if (!compress) return;
    const gzip = createGzip();
    this.gzip = gzip;
    gzip.on('data', (chunk: Buffer) => {
      this.compressedFlushed = this.until((done) => this.send(chunk, done));
    });
    gzip.once('end', () => {
      if (!res.destroyed) res.end();
    });
    gzip.on('error', () => res.destroy());
    res.once('close', () => gzip.destroy());
  }

  /** False once the response is closed (client gone, or ended/destroyed here). */
  isOpen(): boolean {
    return !this.res.destroyed && !this.res.writableEnded && this.gzip?.writableEnded !== true;
  }

  async write(chunk: string | Buffer): Promise<boolean> {
    if (!this.isOpen()) return false;
    const gzip = this.gzip;
    if (gzip === undefined) {
      await this.until((done) => this.send(chunk, done));
    } else {
      gzip.write(chunk);
      await this.until((done) => {
        gzip.flush(constants.Z_SYNC_FLUSH, done);
        return undefined;
      });
      await this.compressedFlushed;
    }
    return this.isOpen();
  }

  end(): void {
    if (!this.isOpen()) return;
    if (this.gzip === undefined) this.res.end();
    else this.gzip.end();
  }

  /** Cuts the connection: the client sees a body that stops without its end. */
  destroy(): void {
    this.gzip?.destroy();
    this.res.destroy();
  }

  /** Writes to the response; `done` once the bytes reached the socket and any backpressure drained. */
  private send(chunk: string | Buffer, done: () => void): () => void {
    let pending = 2;
    const step = (): void => {
      pending--;
      if (pending === 0) done();
    };
    const ok = this.res.write(chunk, () => step());
    if (ok) step();
    else this.res.once('drain', step);
    return () => this.res.off('drain', step);
  }

  /** Resolves when `register`'s callback fires or the response closes, whichever comes first. */
  private until(register: (done: () => void) => (() => void) | undefined): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const cleanups: (() => void)[] = [];
      const done = (): void => {
        if (settled) return;
        settled = true;
        this.res.off('close', done);
        for (const cleanup of cleanups) cleanup();
        resolve();
      };
      this.res.once('close', done);
      const cleanup = register(done); // registrations never call back synchronously
      if (cleanup !== undefined) cleanups.push(cleanup);
    });
  }
}
