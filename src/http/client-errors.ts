import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { anthropicErrorBody } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';

/**
 * Answers for requests that never become a `request` event: whatever Node's HTTP parser refuses
 * (`clientError`: malformed request line, unknown method, bad chunked framing, conflicting
 * Content-Length, header overflow, header timeout) and CONNECT (`connect`). Each gets the
 * Anthropic error body and `connection: close`, written straight to the socket, which then
 * closes: after a framing error nothing later on that connection can be trusted.
 */

/** How long a refused socket may take to flush its answer before it is destroyed anyway. */
const FLUSH_DEADLINE_MS = 1_000;

interface ParserError extends Error {
  code?: string;
}

/** The status Node itself would use for the parser's error code, and a message safe to show. */
export function describeClientError(err: ParserError): { status: number; message: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: 'Request header fields too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return { status: 408, message: 'Request headers were not received in time' };
    case 'HPE_INVALID_METHOD':
      return { status: 400, message: 'Malformed request: unknown or invalid method' };
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { status: 400, message: 'Malformed request: invalid message framing (Content-Length / Transfer-Encoding)' };
    default:
      // The parser's code names the problem; its message may quote request bytes, so it is not echoed.
      return { status: 400, message: `Malformed request${err.code?.startsWith('HPE_') === true ? ` (${err.code})` : ''}` };
  }
}

function rawAnswer(status: number, message: string): string {
  const body = JSON.stringify(anthropicErrorBody(status, message));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** Writes a whole answer and closes; destroys the socket at the deadline if the peer does not read. */
function answerAndClose(socket: Duplex, answer: string): void {
  const timer = setTimeout(() => socket.destroy(), FLUSH_DEADLINE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer, () => socket.destroy());
}

/** Node's own default does the same check: a response whose head already went out cannot be followed by another. */
function responseStarted(socket: Duplex): boolean {
  const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  return current?.headersSent === true;
}

/** `server.on('clientError', clientErrorHandler(logger))`. */
export function clientErrorHandler(logger: Logger): (err: ParserError, socket: Duplex) => void {
  return (err, socket) => {
    // ECONNRESET: the peer is gone; a socket that cannot be written is only cleaned up.
    if (err.code === 'ECONNRESET' || !socket.writable || responseStarted(socket)) {
      socket.destroy();
      return;
    }
    const { status, message } = describeClientError(err);
    // Debug only: anyone can send malformed requests, and they must not flood the logs.
    logger.debug({ code: err.code, status }, 'malformed request refused');
    answerAndClose(socket, rawAnswer(status, message));
  };
}

/** `server.on('connect', onConnect)`: the gateway is no forward proxy; CONNECT gets a 400. */
export function onConnect(_req: IncomingMessage, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  answerAndClose(socket, rawAnswer(400, 'Invalid request target: CONNECT is not supported'));
}
