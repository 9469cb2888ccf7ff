import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { anthropicErrorBody } from '../errors.js';

/** Resolves when the client can take more bytes, or has gone away. */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export interface RelayResult {
  /** Every upstream byte reached the client's socket buffer and the response ended. */
  complete: boolean;
  /** The upstream body failed after headers were sent (cut connection, idle timeout). */
  upstreamError: unknown;
}

/**
 * Copies an upstream body to the client chunk by chunk, as it arrives: nothing is held back, and
 * a slow client pauses the upstream read (TCP backpressure) instead of growing a buffer here.
 * `onChunk` sees every chunk before it is written (usage parsing, fan-out).
 *
 * When the upstream fails mid-body, an event stream gets a final Anthropic `error` event (the SDK
 * raises it) and ends cleanly; any other body has no in-band error, so the connection is cut and
 * the client sees an incomplete response rather than a truncated one that looks whole.
 */
export async function relayBody(
  upstream: Readable,
  res: ServerResponse,
  isEventStream: boolean,
  onChunk?: (chunk: Buffer) => void,
): Promise<RelayResult> {
  try {
    for await (const chunk of upstream as AsyncIterable<Buffer>) {
      if (res.destroyed) return { complete: false, upstreamError: undefined };
      onChunk?.(chunk);
      if (!res.write(chunk)) await writable(res);
    }
  } catch (err) {
    if (res.destroyed) return { complete: false, upstreamError: undefined };
    if (isEventStream) {
      const body = anthropicErrorBody(502, 'Upstream stream was interrupted');
      res.end(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    } else {
      res.destroy();
    }
    return { complete: false, upstreamError: err };
  }
  if (res.destroyed) return { complete: false, upstreamError: undefined };
  res.end();
  return { complete: true, upstreamError: undefined };
}
