import { EventStreamCodec, type MessageHeaders } from '@smithy/core/event-streams';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { errorBody } from './error-body.js';
import type { BedrockStreamFault } from './faults.js';
import type { ProviderFraming } from './reply.js';
import type { ChunkWriter, EventWriter } from './sse.js';

/**
 * How Bedrock and Vertex AI frame the answers the mock computes in Anthropic's terms: Bedrock's
 * errors (`x-amzn-errortype` + `{"message"}`) and binary event stream (`chunk` events whose
 * `bytes` are base64 of the Anthropic event JSON; exceptions as `:message-type: exception` frames);
 * Vertex's Google-shaped errors (SSE and JSON bodies are Anthropic's own there).
 */

const codec = new EventStreamCodec(toUtf8, fromUtf8);

const STRIKE_AT = 5;

/** Bedrock's error type and HTTP status for an Anthropic status. */
function bedrockError(status: number): { type: string; status: number } {
  if (status === 429) return { type: 'ThrottlingException', status: 429 };
  if (status === 529 || status === 503) return { type: 'ServiceUnavailableException', status: 503 };
  if (status === 401 || status === 403) return { type: 'AccessDeniedException', status: 403 };
  if (status === 404) return { type: 'ResourceNotFoundException', status: 404 };
  if (status === 408 || status === 504) return { type: 'ModelTimeoutException', status: 408 };
  if (status >= 500) return { type: 'InternalServerException', status: 500 };
  return { type: 'ValidationException', status: 400 };
}

/** Bedrock's exception name inside a stream for an Anthropic error type. */
function streamException(anthropicType: string): string {
  if (anthropicType === 'rate_limit_error') return 'throttlingException';
  if (anthropicType === 'overloaded_error') return 'serviceUnavailableException';
  if (anthropicType === 'invalid_request_error') return 'validationException';
  return 'internalServerException';
}

export function bedrockErrorAnswer(type: string, status: number, message: string, requestId: string): { status: number; headers: Record<string, string>; body: Buffer } {
  return { status, headers: { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, 'x-amzn-requestid': requestId }, body: Buffer.from(JSON.stringify({ message })) };
}

export function encodeFrame(headers: MessageHeaders, body: Buffer): Buffer {
  return Buffer.from(codec.encode({ headers, body }));
}

export function chunkFrame(eventJson: Buffer): Buffer {
  return encodeFrame(
    { ':event-type': { type: 'string', value: 'chunk' }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'event' } },
    Buffer.from(JSON.stringify({ bytes: eventJson.toString('base64'), p: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0' })),
  );
}

export function exceptionFrame(exceptionType: string, message: string): Buffer {
  return encodeFrame(
    { ':exception-type': { type: 'string', value: exceptionType }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'exception' } },
    Buffer.from(JSON.stringify({ message })),
  );
}

/** The event name and data of one SSE text block as the mock's handlers write it. */
function parseSse(text: string): { name: string; data: string } | undefined {
  const name = /^event: (.*)$/m.exec(text)?.[1];
  const data = /^data: (.*)$/m.exec(text)?.[1];
  return name === undefined || data === undefined ? undefined : { name, data };
}

class BedrockEventWriter implements EventWriter {
  private written = 0;

  constructor(
    private readonly writer: ChunkWriter,
    private readonly fault: BedrockStreamFault | undefined,
  ) {}

  async write(chunk: string): Promise<boolean> {
    const event = parseSse(chunk);
    if (event === undefined) return this.writer.write(chunk);
    if (event.name === 'error') {
      const parsed = JSON.parse(event.data) as { error: { type: string; message: string } };
      await this.writer.write(exceptionFrame(streamException(parsed.error.type), parsed.error.message));
      return false;
    }
    const frame = chunkFrame(Buffer.from(event.data));
    if (this.written++ === STRIKE_AT && this.fault !== undefined) return this.strike(frame);
    return this.writer.write(frame);
  }

  end(): void {
    this.writer.end();
  }

  destroy(): void {
    this.writer.destroy();
  }

  private async strike(frame: Buffer): Promise<boolean> {
    if (this.fault === 'cut-frame') {
      // Half a frame, then a clean end of the body: only the framing says something is missing.
      await this.writer.write(frame.subarray(0, Math.floor(frame.length / 2)));
      this.writer.end();
      return false;
    }
    if (this.fault === 'bad-crc') {
      const bad = Buffer.from(frame);
      const at = bad.length - 8; // inside the payload: the message CRC no longer matches
      bad[at] = (bad[at] as number) ^ 0xff;
      await this.writer.write(bad);
      this.writer.end();
      return false;
    }
    await this.writer.write(exceptionFrame('throttlingException', 'Too many tokens, please wait before trying again.'));
    this.writer.end();
    return false;
  }
}

export function bedrockFraming(streamFault: BedrockStreamFault | undefined): ProviderFraming {
  return {
    headers: (requestId) => ({ 'x-amzn-requestid': requestId }),
    error: (status, message, requestId) => {
      const mapped = bedrockError(status);
      return bedrockErrorAnswer(mapped.type, mapped.status, message, requestId);
    },
    streamContentType: 'application/vnd.amazon.eventstream',
    eventWriter: (writer) => new BedrockEventWriter(writer, streamFault),
  };
}

/** Google's canonical status for an HTTP status. */
function googleStatus(status: number): { code: number; status: string } {
  if (status === 429) return { code: 429, status: 'RESOURCE_EXHAUSTED' };
  if (status === 529 || status === 503) return { code: 503, status: 'UNAVAILABLE' };
  if (status === 401) return { code: 401, status: 'UNAUTHENTICATED' };
  if (status === 403) return { code: 403, status: 'PERMISSION_DENIED' };
  if (status === 404) return { code: 404, status: 'NOT_FOUND' };
  if (status === 504) return { code: 504, status: 'DEADLINE_EXCEEDED' };
  if (status >= 500) return { code: 500, status: 'INTERNAL' };
  return { code: 400, status: 'INVALID_ARGUMENT' };
}

/**
 * Vertex AI: Google-shaped errors for the statuses Google's front end answers itself (quota,
 * availability, auth, routing); Anthropic's own error body for a request Claude rejected (400).
 */
export function vertexFraming(): ProviderFraming {
  return {
    headers: (requestId) => ({ 'x-vertex-ai-request-id': requestId }),
    error: (status, message, requestId) => {
      if (status === 400 || status === 413) return { status, headers: {}, body: Buffer.from(JSON.stringify(errorBody(status, message, requestId))) };
      const google = googleStatus(status);
      return { status: google.code, headers: {}, body: Buffer.from(JSON.stringify({ error: { code: google.code, message, status: google.status } })) };
    },
    streamContentType: 'text/event-stream; charset=utf-8',
    eventWriter: (writer) => writer,
  };
}
