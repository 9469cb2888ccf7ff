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
  return new Promise<ReadBody>((resolve, reject) => {
    readBodyThen(req, maxBytes, fingerprint, tapCachePrefix, {
      bodyRead: (error, bytes, model, cachePrefix) => {
        if (error !== undefined) reject(error);
        else resolve({ bytes: bytes as Buffer, model, cachePrefix });
      },
    });
  });
}

/** Told once how a body read ended: the error answered with (a GatewayError), else the bytes and what the scan found. An object: a read costs no closure for it. */
export interface BodyTaker {
  bodyRead(error: GatewayError | undefined, bytes: Buffer | undefined, model: string | undefined, cachePrefix: CachePrefix | undefined): void;
}

/**
 * `readBody` without a promise: `taker` is told once (at once for a declared length over the cap).
 * A body with a declared length is whole when that many bytes arrived: it is told from that chunk's
 * event, not a tick later from 'end' (node's parser delivers no byte past the length).
 * The read's state is one object on the request, and its four listeners are the same functions for
 * every request (node calls a listener with the request as `this`): no closure per read.
 */
export function readBodyThen(req: IncomingMessage, maxBytes: number, fingerprint: FingerprintHash | undefined, tapCachePrefix: boolean, taker: BodyTaker): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    taker.bodyRead(tooLarge(maxBytes), undefined, undefined, undefined);
    return;
  }
  // -1: whole only at 'end' (chunked, or no usable length).
  const expected = declared !== undefined && req.headers['transfer-encoding'] === undefined ? Number(declared) : -1;
  (req as Reading)[kRead] = new BodyRead(maxBytes, expected, fingerprint, isJson(req) ? new JsonScanner(MAX_JSON_DEPTH, tapCachePrefix) : undefined, taker);
  // Event-based rather than for-await: leaving a for-await early would destroy the socket before
  // the 413 could be sent. Past the cap the rest is discarded (req stays flowing), never stored.
  // The listeners stay on the request once the read was told, each a no-op then (removing a
  // request's last listener makes node allocate a new listener table per request).
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
  req.on('aborted', onAborted);
  // Starts the request's reading now. A body that came in the same read as its head is still
  // ahead of node's parser (the stage runs from the head's callback): the parser then hands it to
  // 'data' as it reaches it, in this turn, instead of buffering it until `resume`'s tick. A body
  // already buffered (a stage before this one waited) flows on that tick as before.
  req.read(0);
}

const kRead = Symbol('claude-gateway.bodyRead');

/** A request being read: its read's state, until the read was told (then undefined: nothing of it stays reachable). */
interface Reading extends IncomingMessage {
  [kRead]?: BodyRead | undefined;
}

/** One body read's state. */
class BodyRead {
  chunks: Buffer[] | undefined = undefined;
  total = 0;

  constructor(
    readonly maxBytes: number,
    /** The declared length, or -1 (whole only at 'end'). */
    readonly expected: number,
    readonly fingerprint: FingerprintHash | undefined,
    readonly scanner: JsonScanner | undefined,
    readonly taker: BodyTaker,
  ) {}
}

function onData(this: Reading, chunk: Buffer): void {
  const read = this[kRead];
  if (read === undefined) return;
  read.total += chunk.length;
  if (read.total > read.maxBytes) {
    this[kRead] = undefined;
    this.resume();
    read.taker.bodyRead(tooLarge(read.maxBytes), undefined, undefined, undefined);
    return;
  }
  // A list made with its first chunk (an empty literal grown by a push is allocated far larger).
  if (read.chunks === undefined) read.chunks = [chunk];
  else read.chunks.push(chunk);
  read.fingerprint?.update(chunk);
  read.scanner?.push(chunk);
  if (read.total === read.expected) onEnd.call(this);
}

function onEnd(this: Reading): void {
  const read = this[kRead];
  if (read === undefined) return;
  this[kRead] = undefined;
  const { chunks, total, scanner, taker } = read;
  const bytes = chunks === undefined ? EMPTY : chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
  if (scanner === undefined || bytes.length === 0) {
    taker.bodyRead(undefined, bytes, undefined, undefined);
    return;
  }
  const scan = scanner.end();
  if (!scan.ok) taker.bodyRead(new GatewayError('INVALID_JSON', `Request body is not valid JSON: ${scan.problem}`), undefined, undefined, undefined);
  // The one place a client's model enters the gateway: nothing past here (URL paths, breakers, labels) sees another.
  else if (scan.model !== undefined && !isModelId(scan.model)) taker.bodyRead(new GatewayError('INVALID_MODEL', MODEL_ID_REFUSAL), undefined, undefined, undefined);
  else taker.bodyRead(undefined, bytes, scan.model, scan.cachePrefix);
}

function onError(this: Reading, err: Error): void {
  const read = this[kRead];
  if (read === undefined) return;
  this[kRead] = undefined;
  read.taker.bodyRead(new GatewayError('BODY_READ_FAILED', 'Request body could not be read', { cause: err }), undefined, undefined, undefined);
}

function onAborted(this: Reading): void {
  onError.call(this, new Error('client aborted the request body'));
}

const EMPTY = Buffer.alloc(0);

