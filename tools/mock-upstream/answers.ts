import { createHash } from 'node:crypto';

/**
 * Deterministic answers and usage derived from the request alone (plus the mock's bounded memory
 * of cached prompt prefixes): the same body always yields the same text, id and token counts.
 *
 * Token model: one token per 4 characters (rounded up) of prompt text. The prompt is read in the
 * API's cache order (tools, system, messages); everything up to and including the last block that
 * carries `cache_control` is the cached prefix, billed as cache creation the first time the mock
 * sees it and as a cache read afterwards, never as `input_tokens`.
 */

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  service_tier: 'standard';
}

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  messages: unknown[];
  system?: unknown;
  tools?: unknown;
  stream?: boolean;
}

export interface Message {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: { type: 'text'; text: string }[];
  stop_reason: 'end_turn' | 'max_tokens';
  stop_sequence: null;
  usage: Usage;
}

const WORDS = ['gateway', 'token', 'stream', 'flight', 'cache', 'model', 'latency', 'request', 'answer', 'shared', 'budget', 'breaker', 'upstream', 'client', 'signal', 'metric'];

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the fields the real API requires of a Messages request; returns an error message or undefined. */
export function validateMessages(body: unknown): string | undefined {
  if (!isObject(body)) return 'body: Input should be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return 'model: Field required (a non-empty string)';
  if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) return 'max_tokens: Field required (a positive integer)';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: Field required (a non-empty array)';
  return undefined;
}

/** Checks a count_tokens request (no max_tokens there). */
export function validateCountTokens(body: unknown): string | undefined {
  if (!isObject(body)) return 'body: Input should be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return 'model: Field required (a non-empty string)';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: Field required (a non-empty array)';
  return undefined;
}

interface Segment {
  text: string;
  marked: boolean;
}

/** A block's text: its `text` when it has one, else its JSON without `cache_control`. */
function blockText(block: Record<string, unknown>): string {
  if (typeof block.text === 'string') return block.text;
  const { cache_control: _cacheControl, ...rest } = block;
  return JSON.stringify(rest);
}

function segmentsOf(content: unknown, into: Segment[]): void {
  if (typeof content === 'string') {
    into.push({ text: content, marked: false });
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) {
    if (isObject(block)) into.push({ text: blockText(block), marked: block.cache_control !== undefined && block.cache_control !== null });
  }
}

export interface PromptText {
  /** Prompt text after the cached prefix. */
  plain: string;
  /** The cached prefix ('' when no block carries cache_control). */
  cached: string;
  /** Text of the last user message. */
  lastUser: string;
}

export function promptText(req: { system?: unknown; tools?: unknown; messages?: unknown }): PromptText {
  const segments: Segment[] = [];
  segmentsOf(req.tools, segments);
  segmentsOf(req.system, segments);
  let lastUser = '';
  for (const m of Array.isArray(req.messages) ? req.messages : []) {
    if (!isObject(m)) continue;
    const own: Segment[] = [];
    segmentsOf(m.content, own);
    segments.push(...own);
    if (m.role === 'user') lastUser = own.map((s) => s.text).join(' ');
  }
  let lastMarked = -1;
  segments.forEach((s, i) => {
    if (s.marked) lastMarked = i;
  });
  const text = (from: number, to: number): string => segments.slice(from, to).map((s) => s.text).join('\n');
  return { cached: text(0, lastMarked + 1), plain: text(lastMarked + 1, segments.length), lastUser };
}

export function tokensOf(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Remembers the cached prefixes it has seen (by hash), least recently used evicted first. */
export class PromptCache {
  private readonly seen = new Set<string>();
  constructor(private readonly capacity = 10_000) {}

  /** True when the prefix was already cached; remembers it either way. */
  touch(prefix: string): boolean {
    const key = sha256(prefix);
    const hit = this.seen.delete(key);
    if (!hit && this.seen.size >= this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(key);
    return hit;
  }

  clear(): void {
    this.seen.clear();
  }
}

export interface Answer {
  id: string;
  /** Words of the answer as text deltas: each with its leading space except the first. */
  pieces: string[];
  stopReason: 'end_turn' | 'max_tokens';
  usage: Usage;
}

/**
 * The answer depends on the request without its `stream` flag, so streamed and plain calls agree.
 * Without a `cache` (batch results), a cached prefix always counts as cache creation.
 */
export function answerFor(req: MessagesRequest, cache?: PromptCache): Answer {
  const { stream: _stream, ...rest } = req;
  const digest = sha256(JSON.stringify(rest));
  const prompt = promptText(req);
  const words = `Mock reply to: ${prompt.lastUser.slice(0, 60)}`.split(/\s+/).filter((w) => w !== '');
  const extra = 5 + (parseInt(digest.slice(0, 8), 16) % 20);
  for (let i = 0; i < extra; i++) {
    const at = 8 + (i % 28) * 2;
    words.push(WORDS[parseInt(digest.slice(at, at + 2), 16) % WORDS.length] ?? 'mock');
  }
  const emitted = words.slice(0, req.max_tokens);
  const cachedTokens = tokensOf(prompt.cached);
  const hit = cachedTokens > 0 && cache !== undefined && cache.touch(prompt.cached);
  const created = hit ? 0 : cachedTokens;
  return {
    id: `msg_mock_${digest.slice(0, 24)}`,
    pieces: emitted.map((w, i) => (i === 0 ? w : ` ${w}`)),
    stopReason: words.length > req.max_tokens ? 'max_tokens' : 'end_turn',
    usage: {
      input_tokens: Math.max(1, tokensOf(prompt.plain)),
      output_tokens: emitted.length,
      cache_creation_input_tokens: created,
      cache_read_input_tokens: hit ? cachedTokens : 0,
      cache_creation: { ephemeral_5m_input_tokens: created, ephemeral_1h_input_tokens: 0 },
      service_tier: 'standard',
    },
  };
}

export function messageOf(answer: Answer, model: string): Message {
  return {
    id: answer.id,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: answer.pieces.join('') }],
    stop_reason: answer.stopReason,
    stop_sequence: null,
    usage: answer.usage,
  };
}

/** count_tokens: the whole prompt, cached prefix included. */
export function countTokens(req: { system?: unknown; tools?: unknown; messages?: unknown }): number {
  const prompt = promptText(req);
  return Math.max(1, tokensOf(prompt.plain) + tokensOf(prompt.cached));
}
