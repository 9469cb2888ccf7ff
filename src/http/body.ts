import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

export interface ReadBody {
  bytes: Buffer;
  /** SHA-256 of the exact bytes (base64url): identical means byte-identical. */
  digest: string;
  /** The top-level string `model` of a JSON object body; undefined otherwise. */
  model: string | undefined;
}

/**
 * JSON nested deeper than this is refused with 400. V8's JSON.parse itself is iterative, but
 * anything that later walks a value recursively would not be, and no Claude request nests this deep.
 */
export const MAX_JSON_DEPTH = 1_000;

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
 * Nesting depth of JSON text, fed chunk by chunk as the body arrives (so its cost is spread over
 * the reads instead of stalling the event loop at the end). Brackets inside strings do not count;
 * the text is not validated here (JSON.parse does that once, afterwards).
 */
export class JsonDepthGauge {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** True once the depth went past the limit (later chunks are then ignored). */
  exceeded = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.exceeded) return;
    let { depth, inString, escaped } = this;
    const limit = this.limit;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === 0x5c) escaped = true; // backslash
        else if (c === 0x22) inString = false; // quote
      } else if (c === 0x22) inString = true;
      else if (c === 0x5b || c === 0x7b) {
        // [ {
        if (++depth > limit) {
          this.exceeded = true;
          return;
        }
      } else if (c === 0x5d || c === 0x7d) depth--; // ] }
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
  }
}

/**
 * Reads a whole request body into memory, never more than `maxBytes` (checked against the declared
 * length first, then while reading). Per chunk, as it arrives: the digest and (for JSON) the
 * nesting gauge. At the end, once: JSON.parse, which validates the body and yields `model`; the
 * parsed value is not kept or walked (the body is forwarded and fingerprinted as bytes).
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<ReadBody> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);

  const json = isJson(req);
  const hash = createHash('sha256');
  const gauge = json ? new JsonDepthGauge(MAX_JSON_DEPTH) : undefined;
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
      hash.update(chunk);
      gauge?.push(chunk);
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
  const digest = hash.digest('base64url');
  if (!json || bytes.length === 0) return { bytes, digest, model: undefined };
  if (gauge?.exceeded === true) {
    throw new GatewayError('INVALID_JSON', 400, `Request body is not acceptable JSON: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    const detail = err instanceof Error ? `: ${err.message.slice(0, 200)}` : '';
    throw new GatewayError('INVALID_JSON', 400, `Request body is not valid JSON${detail}`, { cause: err });
  }
  const model = (parsed as { model?: unknown } | null)?.model;
  return { bytes, digest, model: typeof model === 'string' ? model : undefined };
}
