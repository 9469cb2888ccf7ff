import type { FlightSource } from '../coalesce/flight.js';

/**
 * Reads an SSE body up to the end of its first event, to tell whether the stream begins with an
 * `error` event (the upstream failed before producing anything: failover is still possible). The
 * bytes read are replayed unchanged in front of the rest of the body. Bounded: at most
 * `maxBytes` are held (a first event larger than that is taken as not an error), and the wait for
 * them is bounded by the transport's body idle timeout and the call's signal, like any body read.
 */

const MAX_PEEK_BYTES = 64 * 1024;

/** The name of the first SSE event in `bytes` ('message' when it has no `event:` field), or undefined when it has not ended yet. */
export function firstEventName(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  const end = /\r?\n\r?\n|\r\r/.exec(text);
  if (end === null) return undefined;
  let name = 'message';
  for (const line of text.slice(0, end.index).split(/\r?\n|\r/)) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
  }
  return name;
}

export interface PeekedStream {
  /** The first event is an SSE `error` event. */
  readonly error: boolean;
  /** The whole body, the peeked bytes first. */
  readonly body: AsyncIterable<Buffer>;
  /** Closes the source when the body will never be read. */
  discard(): void;
}

export async function peekFirstEvent(body: FlightSource['body'], maxBytes = MAX_PEEK_BYTES): Promise<PeekedStream> {
  const source = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let bytes = 0;
  let ended = false;
  let name: string | undefined;
  while (name === undefined && bytes <= maxBytes) {
    const step = await source.next();
    if (step.done === true) {
      ended = true;
      break;
    }
    seen.push(step.value);
    bytes += step.value.length;
    name = firstEventName(seen.length === 1 ? step.value : Buffer.concat(seen, bytes));
  }
  async function* replay(): AsyncGenerator<Buffer> {
    let finished = ended;
    try {
      yield* seen;
      while (!finished) {
        const step = await source.next();
        if (step.done === true) finished = true;
        else yield step.value;
      }
    } finally {
      // Stopped early (abandoned, failed): close the source too.
      if (!finished) await source.return?.();
    }
  }
  return {
    error: name === 'error',
    body: replay(),
    discard: () => {
      if (!ended) void source.return?.().catch(() => undefined);
    },
  };
}
