import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

export interface ReadBody {
  bytes: Buffer;
  /** Parsed JSON when the body is declared JSON (validated); undefined otherwise. */
  json: unknown;
}

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

export function isJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return type !== undefined && /^application\/(?:[\w.+-]*\+)?json\b/i.test(type);
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError('BODY_TOO_LARGE', 413, `Request body exceeds the gateway limit of ${maxBytes} bytes (MAX_BODY_BYTES)`);
}

/**
 * Reads a whole request body into memory, never more than `maxBytes` (checked against the declared
 * length first, then while reading), and validates JSON when the body is declared JSON.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<ReadBody> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);

  const chunks: Buffer[] = [];
  let total = 0;
  // Event-based rather than for-await: leaving a for-await early would destroy the socket before
  // the 413 could be sent. Past the cap the rest is discarded (req stays flowing), never stored.
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        req.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new GatewayError('BODY_READ_FAILED', 400, 'Request body could not be read', { cause: err }));
    };
    const onAborted = (): void => onError(new Error('client aborted the request body'));
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
  const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
  if (!isJson(req) || bytes.length === 0) return { bytes, json: undefined };
  try {
    return { bytes, json: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch (err) {
    const detail = err instanceof Error ? `: ${err.message.slice(0, 200)}` : '';
    throw new GatewayError('INVALID_JSON', 400, `Request body is not valid JSON${detail}`, { cause: err });
  }
}
