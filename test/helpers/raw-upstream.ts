import { createServer, type Server, type Socket } from 'node:net';
import { forSuite } from './suite.js';

/**
 * A hostile upstream that writes raw HTTP/1.1 bytes: whatever framing the test wants, including
 * framing a well-behaved server never produces (a chunked body without its terminating chunk, a
 * body delimited only by the closing connection, a content-length the body never reaches).
 *
 * Each request (head plus its content-length body) is counted, then answered by `script` with
 * `bytes`; the connection is then closed (`end`), so a close-delimited body ends exactly where the
 * script's bytes end. A script may wait (a latch) before answering.
 */
export interface RawUpstreamRequest {
  /** 1 for the first request this server received. */
  n: number;
  method: string;
  path: string;
  body: string;
}

export type RawScript = (req: RawUpstreamRequest) => Buffer | string | Promise<Buffer | string>;

export interface RawUpstream {
  url: string;
  /** Requests received so far. */
  readonly requests: RawUpstreamRequest[];
  close(): Promise<void>;
}

export async function rawUpstream(script: RawScript): Promise<RawUpstream> {
  const requests: RawUpstreamRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      answered = true;
      const [method = '', path = ''] = head.split('\r\n', 1)[0]?.split(' ') ?? [];
      const req: RawUpstreamRequest = { n: requests.length + 1, method, path, body: buffered.subarray(end + 4, end + 4 + length).toString('utf8') };
      requests.push(req);
      void Promise.resolve(script(req)).then(
        (bytes) => socket.end(bytes),
        () => socket.destroy(),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One raw upstream for the enclosing suite: listening before its tests, closed after them (see `forSuite`). */
export function rawUpstreamForSuite(script: RawScript): RawUpstream {
  return forSuite(() => rawUpstream(script), (upstream) => upstream.close(), 'the suite\'s raw upstream');
}

/** A status line and headers (`connection: close` added: every answer ends its connection). */
export function rawHead(status: number, headers: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Status'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push('connection: close');
  return lines.join('\r\n') + '\r\n\r\n';
}

/** One chunk of a chunked body. */
export function rawChunk(data: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

/** The terminating chunk of a chunked body. */
export const LAST_CHUNK = '0\r\n\r\n';
