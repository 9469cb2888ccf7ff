import { Transform, type TransformCallback } from 'node:stream';
import { EventStreamCodec, type Message } from '@smithy/core/event-streams';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { anthropicErrorBody, GatewayError } from '../../core/errors.js';
import { TopLevelObject } from './json-edit.js';
import { bounded, clientText, ignoreProviderErrors, mapBedrockError, type ProviderErrorSink } from './provider-errors.js';

/**
 * Bedrock's `invoke-with-response-stream` answer (`application/vnd.amazon.eventstream`: binary
 * frames, each `[total length][headers length][prelude CRC][headers][payload][message CRC]`) as
 * Anthropic's SSE. Each `chunk` event's payload is `{"bytes":"<base64>"}`, the base64 of one
 * Anthropic event's JSON: it is re-emitted as `event: <type>\ndata: <those exact bytes>\n\n`, so the
 * client sees the same event sequence, usage included, with every byte of every event kept.
 *
 * Invariants: frames may arrive split across chunks at any byte, or several in one chunk; at most
 * one partial frame is held (bounded by MAX_FRAME). An exception frame becomes an SSE `error` event
 * in Anthropic's shape and ends the stream (the provider ends it there too); its text is the
 * gateway's reason, the provider's own text only for a `clientMessage` class (provider-errors.ts),
 * otherwise reported for the log with the stream's request id. A frame whose CRC does
 * not verify, a length out of bounds, or a body that ends mid-frame destroys the stream with a coded
 * GatewayError (UPSTREAM_RESPONSE_INVALID), which the gateway reports as its usual mid-stream error.
 */

/** Bedrock's messages are far smaller; a larger prelude length means the framing is lost. */
const MAX_FRAME = 24 * 1024 * 1024;
/** Prelude (12) + message CRC (4): the smallest legal frame. */
const MIN_FRAME = 16;

const codec = new EventStreamCodec(toUtf8, fromUtf8);

function stringHeader(message: Message, name: string): string | undefined {
  const h = message.headers[name];
  return h?.type === 'string' ? h.value : undefined;
}

function invalid(what: string): GatewayError {
  return new GatewayError('UPSTREAM_RESPONSE_INVALID', `Bedrock event stream ${what}`);
}

/** `event:`/`data:` lines for one event; JSON that spans lines gets one `data:` line per line (SSE joins them with \n). */
function sseFrame(type: string, json: Buffer): Buffer {
  if (!json.includes(0x0a) && !json.includes(0x0d)) return Buffer.concat([Buffer.from(`event: ${type}\ndata: `), json, Buffer.from('\n\n')]);
  const lines = json.toString('utf8').split(/\r\n|\r|\n/);
  return Buffer.from(`event: ${type}\n${lines.map((l) => `data: ${l}`).join('\n')}\n\n`);
}

/** Anthropic's SSE `error` event for a provider exception. */
export function sseError(status: number, message: string, requestId?: string): Buffer {
  return Buffer.from(`event: error\ndata: ${JSON.stringify(anthropicErrorBody(status, message, requestId))}\n\n`);
}

/** An exception frame's message: `{"message"}` when its payload is JSON (the only text a client may read); otherwise its text, for the log. */
function payloadMessage(body: Uint8Array): { json: string | undefined; text: string | undefined } {
  try {
    const parsed = JSON.parse(toUtf8(body)) as unknown;
    if (typeof parsed === 'object' && parsed !== null) {
      const m = (parsed as Record<string, unknown>).message ?? (parsed as Record<string, unknown>).Message;
      if (typeof m === 'string') return { json: m, text: m };
    }
  } catch {
    // A payload that is not JSON is logged raw below.
  }
  return { json: undefined, text: body.length > 0 ? toUtf8(body.subarray(0, 2048)) : undefined };
}

export class EventStreamToSse extends Transform {
  /** Bytes of a frame not yet complete (at most one frame's worth). */
  private pending: Buffer = Buffer.alloc(0);
  /** Set once an exception ended the stream: later bytes are ignored. */
  private finished = false;
  /** Events re-emitted so far (observability, tests). */
  events = 0;

  constructor(
    /** Where exception texts kept from clients are reported. */
    private readonly report: ProviderErrorSink = ignoreProviderErrors,
    /** The request id the client was given for this stream. */
    private readonly requestId?: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.finished) {
      callback();
      return;
    }
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      let ended = false;
      while (buffer.length >= 4 && !ended) {
        const total = buffer.readUInt32BE(0);
        if (total < MIN_FRAME || total > MAX_FRAME) throw invalid(`frame length ${total} is out of bounds`);
        if (buffer.length < total) break;
        let message: Message;
        try {
          message = codec.decode(buffer.subarray(0, total));
        } catch (err) {
          throw new GatewayError('UPSTREAM_RESPONSE_INVALID', `Bedrock event stream frame is malformed (${err instanceof Error ? err.message : 'undecodable'})`, { cause: err });
        }
        buffer = buffer.subarray(total);
        ended = this.emitMessage(message);
      }
    } catch (err) {
      this.failAfterDelivery(err as Error, callback);
      return;
    }
    // Copied: the source may reuse its chunk, and a subarray would pin the whole of it.
    this.pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.finished && this.pending.length > 0) this.failAfterDelivery(invalid(`ended mid-frame (${this.pending.length} bytes of an incomplete frame)`), callback);
    else callback();
  }

  /** A failure to report once the events already translated were read: destroying now would drop them. */
  private deferredFailure: Error | undefined;

  private failAfterDelivery(err: Error, callback: TransformCallback): void {
    if (this.readableLength === 0) {
      callback(err);
      return;
    }
    // Every consumer (pipe, async iteration, read()) takes buffered events through read().
    this.deferredFailure = err;
  }

  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    const err = this.deferredFailure;
    if (err !== undefined && this.readableLength === 0) {
      this.deferredFailure = undefined;
      // After this chunk was handed over (read() returns it synchronously).
      process.nextTick(() => this.destroy(err));
    }
    return chunk;
  }

  /** Emits one decoded frame's SSE; true when it ended the stream (an exception). */
  private emitMessage(message: Message): boolean {
    const messageType = stringHeader(message, ':message-type');
    if (messageType === 'event') {
      const eventType = stringHeader(message, ':event-type');
      if (eventType !== 'chunk') return false; // other event types carry nothing the Messages API has
      this.push(this.chunkEvent(message.body));
      this.events++;
      return false;
    }
    if (messageType === 'exception' || messageType === 'error') {
      const type = messageType === 'exception' ? stringHeader(message, ':exception-type') : stringHeader(message, ':error-code');
      const mapped = mapBedrockError(500, type);
      const detail = messageType === 'exception' ? payloadMessage(message.body) : { json: undefined, text: stringHeader(message, ':error-message') };
      const kept = clientText(mapped, detail.json);
      if (kept === undefined) {
        this.report({ kind: 'bedrock', providerStatus: undefined, providerType: bounded(type, 256), status: mapped.status, upstreamRequestId: this.requestId, providerMessage: bounded(detail.text) });
      }
      this.push(sseError(mapped.status, kept === undefined ? mapped.reason : `${mapped.reason}: ${kept}`, this.requestId));
      this.finished = true;
      this.push(null);
      return true;
    }
    throw invalid(`frame has an unknown :message-type (${messageType ?? 'none'})`);
  }

  private chunkEvent(payload: Uint8Array): Buffer {
    const b64 = base64Of(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    if (b64 === undefined) throw invalid('chunk has no "bytes" field');
    const json = Buffer.from(b64, 'base64');
    const type = eventType(json);
    if (type === undefined || !/^[a-z_]{1,64}$/.test(type)) throw invalid('chunk is not an Anthropic event (no "type")');
    return sseFrame(type, json);
  }
}

const BYTES_PREFIX = Buffer.from('{"bytes":"');
const TYPE_PREFIX = Buffer.from('{"type":"');

/**
 * The chunk envelope's base64. Bedrock writes `{"bytes":"<base64>"...}` (base64 holds no quote or
 * escape), so the value is read straight after that prefix; any other layout goes through the scanner.
 */
function base64Of(envelope: Buffer): string | undefined {
  if (envelope.subarray(0, BYTES_PREFIX.length).equals(BYTES_PREFIX)) {
    const end = envelope.indexOf(0x22, BYTES_PREFIX.length);
    if (end > 0) return envelope.toString('latin1', BYTES_PREFIX.length, end);
  }
  return TopLevelObject.parse(envelope)?.string('bytes');
}

/** The event's `type`: Anthropic's events open with it; otherwise (or if escaped) the scanner finds it. */
function eventType(json: Buffer): string | undefined {
  if (json.subarray(0, TYPE_PREFIX.length).equals(TYPE_PREFIX)) {
    const end = json.indexOf(0x22, TYPE_PREFIX.length);
    const type = end > 0 ? json.toString('latin1', TYPE_PREFIX.length, end) : undefined;
    if (type !== undefined && !type.includes('\\')) return type;
  }
  return TopLevelObject.parse(json)?.string('type');
}
