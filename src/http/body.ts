import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../core/errors.js';
import { JsonScanner, type CachePrefix } from '../core/json-scan.js';
import { isModelId, MODEL_ID_REFUSAL } from '../upstream/model-id.js';
import type { FingerprintHash } from '../pipeline/fingerprint.js';

export interface ReadBody {
  bytes: Buffer;
  /** The top-level string `model` of a JSON object body, always a model id (upstream/model-id.ts); undefined when there is none. */
  model: string | undefined;
  /** The identity of the prompt's cached head (tools and system carrying a breakpoint), when asked for and present. */
  cachePrefix: CachePrefix | undefined;
}

/**
 * JSON nested deeper than this is refused with 400: no Claude request nests this deep, and
 * anything that walked such a value recursively (here or upstream) would overflow its stack.
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
  return new GatewayError('BODY_TOO_LARGE', `Request body exceeds the gateway limit of ${maxBytes} bytes (MAX_BODY_BYTES)`);
}

/**
 * Reads a whole request body into memory, never more than `maxBytes` (checked against the declared
 * length first, then while reading). Per chunk, as it arrives: the request's fingerprint when it
 * has one (pipeline/fingerprint.ts) and, for JSON, the validating scan that also finds `model`
 * (core/json-scan.ts), which, with `tapCachePrefix`, also hashes the cached head of the prompt in
 * the same pass (cache affinity). Nothing is parsed into values and
 * nothing is done at the end in proportion to the body's size but one copy (Buffer.concat): one
 * large body cannot hold the event loop for long.
 */
export function readBody(req: IncomingMessage, maxBytes: number, fingerprint?: FingerprintHash, tapCachePrefix = false): Promise<ReadBody> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge(maxBytes));

  const json = isJson(req);
  const scanner = json ? new JsonScanner(MAX_JSON_DEPTH, tapCachePrefix) : undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  // Event-based rather than for-await: leaving a for-await early would destroy the socket before
  // the 413 could be sent. Past the cap the rest is discarded (req stays flowing), never stored.
  // One promise, settled with the result at the end (no async frame around it).
  return new Promise<ReadBody>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        req.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
      fingerprint?.update(chunk);
      scanner?.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      const read = bodyOf(chunks, total, scanner);
      if (read instanceof GatewayError) reject(read);
      else resolve(read);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new GatewayError('BODY_READ_FAILED', 'Request body could not be read', { cause: err }));
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
}

/** The whole body read: its bytes and what the scan found, or the 400 of a body that is not a valid request. */
function bodyOf(chunks: readonly Buffer[], total: number, scanner: JsonScanner | undefined): ReadBody | GatewayError {
  const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
  if (scanner === undefined || bytes.length === 0) return { bytes, model: undefined, cachePrefix: undefined };
  const scan = scanner.end();
  if (!scan.ok) return new GatewayError('INVALID_JSON', `Request body is not valid JSON: ${scan.problem}`);
  // The one place a client's model enters the gateway: nothing past here (URL paths, breakers, labels) sees another.
  if (scan.model !== undefined && !isModelId(scan.model)) return new GatewayError('INVALID_MODEL', MODEL_ID_REFUSAL);
  return { bytes, model: scan.model, cachePrefix: scan.cachePrefix };
}
