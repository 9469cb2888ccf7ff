import { SseParser, type SseEvent } from './sse.js';
import { forEachMember, hasEscape, keyIs, stringAt, TopLevelObject } from './kinds/json-edit.js';
import type { TokenUsage } from '../core/token-usage.js';
import { plainUsage, type UsageCounts } from './plain-usage.js';

/** An answer's `usage` as parsed: the counts a client reads (a value that is not a number counts 0). */
type ApiUsage = UsageCounts;

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

/** Overlays the fields present in `next` (stream usage objects may carry only some fields). */
function merge(into: TokenUsage, next: ApiUsage | null | undefined): void {
  if (next === null) return;
  if (next === undefined) return;
  if (next.input_tokens !== undefined) into.input = num(next.input_tokens);
  if (next.output_tokens !== undefined) into.output = num(next.output_tokens);
  if (next.cache_creation_input_tokens !== undefined) into.cache_creation = num(next.cache_creation_input_tokens);
  if (next.cache_read_input_tokens !== undefined) into.cache_read = num(next.cache_read_input_tokens);
}

/**
 * `id`, `model` and `usage` of a plain JSON answer. Only those values are parsed: the answer's
 * members are walked without building them (kinds/json-edit.ts forEachMember: no member list, no key
 * strings), the last of duplicate keys winning as in JSON.parse, and its content blocks, most of its
 * bytes, are skipped; JSON.parse of the whole answer was the meter's largest cost. An answer with an
 * escaped top-level key is read through TopLevelObject (keys decoded); anything that is not one JSON
 * object is parsed whole, as before. Throws when it is not JSON.
 */
function answerFacts(text: Buffer): { usage?: ApiUsage; model?: unknown; id?: unknown } {
  const found = FOUND;
  found.reset(text);
  let close: number;
  try {
    close = forEachMember(text, visitMember);
  } finally {
    found.text = undefined; // the record never holds an answer past its walk
  }
  const { idAt, idEnd, modelAt, modelEnd, usageAt, usageEnd, escapedKey } = found;
  if (close < 0) return JSON.parse(text.toString('utf8')) as { usage?: ApiUsage; model?: unknown; id?: unknown };
  if (escapedKey) return decodedAnswerFacts(text);
  return {
    id: idAt < 0 ? undefined : stringAt(text, idAt, idEnd),
    model: modelAt < 0 ? undefined : stringAt(text, modelAt, modelEnd),
    usage: usageAt < 0 ? undefined : (plainUsage(text, usageAt, usageEnd) ?? (JSON.parse(text.toString('utf8', usageAt, usageEnd)) as ApiUsage)),
  };
}

/**
 * Where answerFacts' walk found `id`, `model` and `usage`: one record for the module, reset before
 * and after each walk (the walk is synchronous and never re-entered), so a walk builds no closure.
 */
class FoundMembers {
  text: Buffer | undefined = undefined;
  idAt = -1;
  idEnd = -1;
  modelAt = -1;
  modelEnd = -1;
  usageAt = -1;
  usageEnd = -1;
  escapedKey = false;

  reset(text: Buffer | undefined): void {
    this.text = text;
    this.idAt = this.idEnd = this.modelAt = this.modelEnd = this.usageAt = this.usageEnd = -1;
    this.escapedKey = false;
  }
}

const FOUND = new FoundMembers();

function visitMember(keyStart: number, keyEnd: number, valueStart: number, end: number): void {
  const found = FOUND;
  const text = found.text as Buffer;
  if (hasEscape(text, keyStart, keyEnd)) found.escapedKey = true;
  else if (keyIs(text, keyStart, keyEnd, 'id')) {
    found.idAt = valueStart;
    found.idEnd = end;
  } else if (keyIs(text, keyStart, keyEnd, 'model')) {
    found.modelAt = valueStart;
    found.modelEnd = end;
  } else if (keyIs(text, keyStart, keyEnd, 'usage')) {
    found.usageAt = valueStart;
    found.usageEnd = end;
  }
}

/** answerFacts through TopLevelObject, whose keys are decoded (`"\u0069d"` is `id`). */
function decodedAnswerFacts(text: Buffer): { usage?: ApiUsage; model?: unknown; id?: unknown } {
  const answer = TopLevelObject.parse(text);
  if (answer === undefined) return JSON.parse(text.toString('utf8')) as { usage?: ApiUsage; model?: unknown; id?: unknown };
  const usage = answer.raw('usage');
  return { id: answer.string('id'), model: answer.string('model'), usage: usage === undefined ? undefined : (JSON.parse(usage.toString('utf8')) as ApiUsage) };
}

/** What an empty JSON answer is parsed as (and fails as: not JSON). */
const EMPTY = Buffer.alloc(0);

/** JSON answers larger than this are not parsed for usage (message answers are far smaller). */
const MAX_JSON_BYTES = 4 * 1024 * 1024;

/**
 * Reads the billed usage out of one upstream answer as its bytes pass by, once per upstream call.
 * Streams: `message_start` gives input and cache tokens, and the LAST `message_delta` gives the
 * cumulative totals (usage there is cumulative: overwritten, never added). Plain answers: `usage`.
 */
export class UsageMeter {
  readonly usage: TokenUsage = { input: 0, output: 0, cache_creation: 0, cache_read: 0 };
  model: string | undefined;
  /** The message id (`msg_...`) of a messages answer. */
  id: string | undefined;
  /** performance.now() of the first content event of a stream. */
  firstTokenAt: number | undefined;
  /** An `error` event arrived in the stream. */
  streamErrorType: string | undefined;
  /** The name of the last complete stream event. */
  private lastEvent: string | undefined;
  private sawUsage = false;
  private readonly parser: SseParser | undefined;
  /** A plain JSON answer is kept (bounded by MAX_JSON_BYTES) while reading it: its first chunk, and the rest only when there is more than one (most answers are one). */
  private reading = false;
  private jsonFirst: Buffer | undefined;
  private jsonRest: Buffer[] | undefined;
  private jsonBytes = 0;

  /** `maxEventLength`: one stream event's size at most (MAX_SSE_EVENT_BYTES); past it `push` throws SseEventTooLarge. */
  constructor(eventStream: boolean, jsonBody: boolean, maxEventLength?: number) {
    if (eventStream) this.parser = new SseParser((e) => this.onEvent(e), maxEventLength);
    else if (jsonBody) this.reading = true;
  }

  push(chunk: Buffer): void {
    if (this.parser !== undefined) {
      this.parser.push(chunk);
      return;
    }
    if (!this.reading) return;
    this.jsonBytes += chunk.length;
    if (this.jsonBytes > MAX_JSON_BYTES) this.dropJson();
    else if (this.jsonFirst === undefined) this.jsonFirst = chunk;
    else (this.jsonRest ??= []).push(chunk);
  }

  /** Stops keeping the JSON answer (too large, or read). */
  private dropJson(): void {
    this.reading = false;
    this.jsonFirst = undefined;
    this.jsonRest = undefined;
  }

  /** The JSON answer kept so far, whole (undefined when not kept or empty). */
  private keptJson(): Buffer | undefined {
    const first = this.jsonFirst;
    const rest = this.jsonRest;
    if (first === undefined) return undefined;
    return rest === undefined ? first : Buffer.concat([first, ...rest]);
  }

  /** Call once the body ended: parses a plain JSON answer. Returns whether usage was found. */
  finish(): boolean {
    if (this.reading) {
      const text = this.keptJson() ?? EMPTY;
      this.dropJson();
      try {
        const body = answerFacts(text);
        if (typeof body.model === 'string') this.model = body.model;
        if (typeof body.id === 'string') this.id = body.id;
        if (body.usage !== undefined) {
          merge(this.usage, body.usage);
          this.sawUsage = true;
        }
      } catch {
        // Not JSON after all: no usage to read.
      }
    }
    return this.sawUsage;
  }

  get hasUsage(): boolean {
    return this.sawUsage;
  }

  /**
   * A stream whose bytes so far end exactly with a complete `message_stop` event: the last event
   * is message_stop and nothing of another event follows it. False for anything that is not a stream.
   */
  get streamStopped(): boolean {
    return this.parser !== undefined && this.lastEvent === 'message_stop' && this.parser.idle;
  }

  private onEvent(e: SseEvent): void {
    this.lastEvent = e.event;
    switch (e.event) {
      case 'content_block_delta':
      case 'content_block_start':
        this.firstTokenAt ??= performance.now();
        return;
      case 'message_start': {
        const data = parse(e.data) as { message?: { model?: unknown; id?: unknown; usage?: ApiUsage } } | undefined;
        if (typeof data?.message?.model === 'string') this.model = data.message.model;
        if (typeof data?.message?.id === 'string') this.id = data.message.id;
        if (data?.message?.usage !== undefined) {
          merge(this.usage, data.message.usage);
          this.sawUsage = true;
        }
        return;
      }
      case 'message_delta': {
        const data = parse(e.data) as { usage?: ApiUsage } | undefined;
        if (data?.usage !== undefined) {
          merge(this.usage, data.usage);
          this.sawUsage = true;
        }
        return;
      }
      case 'error': {
        const data = parse(e.data) as { error?: { type?: unknown } } | undefined;
        this.streamErrorType = typeof data?.error?.type === 'string' ? data.error.type : 'error';
        return;
      }
      default:
        return;
    }
  }
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
