import { createHash } from 'node:crypto';
import { billPrompt, promptBlocks, type PromptCache } from './prompt-cache.js';

/**
 * Deterministic answers and usage derived from the request alone (plus the mock's bounded memory
 * of cached prompt prefixes): the same body always yields the same text, id and token counts.
 *
 * Token model: one token per 4 characters (rounded up) of prompt text. Prompt caching (what is
 * read, created and plain input, per credential, with TTLs and minimum lengths): prompt-cache.ts.
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

/** Text of the last user message (the answer quotes it). */
function lastUserText(messages: unknown): string {
  let last = '';
  for (const m of Array.isArray(messages) ? messages : []) {
    if (isObject(m) && m.role === 'user') last = promptBlocks({ messages: [m] }).map((b) => b.text).join(' ');
  }
  return last;
}

export interface Answer {
  id: string;
  /** Words of the answer as text deltas: each with its leading space except the first. */
  pieces: string[];
  stopReason: 'end_turn' | 'max_tokens';
  usage: Usage;
}

/**
 * The answer depends on the request without its `stream` flag, so streamed and plain calls agree;
 * its usage also on what `cache` holds for the credential `scope`. Without a `cache` (batch
 * results), a cacheable prefix always counts as cache creation.
 */
export function answerFor(req: MessagesRequest, cache?: PromptCache, scope = ''): Answer {
  const { stream: _stream, ...rest } = req;
  const digest = sha256(JSON.stringify(rest));
  const words = `Mock reply to: ${lastUserText(req.messages).slice(0, 60)}`.split(/\s+/).filter((w) => w !== '');
  const extra = 5 + (parseInt(digest.slice(0, 8), 16) % 20);
  for (let i = 0; i < extra; i++) {
    const at = 8 + (i % 28) * 2;
    words.push(WORDS[parseInt(digest.slice(at, at + 2), 16) % WORDS.length] ?? 'mock');
  }
  const emitted = words.slice(0, req.max_tokens);
  const bill = billPrompt(promptBlocks(req), req.model, scope, cache);
  return {
    id: `msg_mock_${digest.slice(0, 24)}`,
    pieces: emitted.map((w, i) => (i === 0 ? w : ` ${w}`)),
    stopReason: words.length > req.max_tokens ? 'max_tokens' : 'end_turn',
    usage: {
      input_tokens: bill.input_tokens,
      output_tokens: emitted.length,
      cache_creation_input_tokens: bill.cache_creation_input_tokens,
      cache_read_input_tokens: bill.cache_read_input_tokens,
      cache_creation: bill.cache_creation,
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

/** count_tokens: the whole prompt, cacheable prefix included (what read + created + input add up to). */
export function countTokens(req: { model?: unknown; system?: unknown; tools?: unknown; messages?: unknown }): number {
  const bill = billPrompt(promptBlocks(req), typeof req.model === 'string' ? req.model : '', '');
  return bill.input_tokens + bill.cache_creation_input_tokens;
}
