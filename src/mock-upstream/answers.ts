import { createHash } from 'node:crypto';

/**
 * Deterministic answers and usage derived from the request alone (plus the mock's bounded memory
 * of cached prompt prefixes): the same body always yields the same text, id and token counts.
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
  stream?: boolean;
}

const WORDS = ['gateway', 'token', 'stream', 'flight', 'cache', 'model', 'latency', 'request', 'answer', 'shared', 'budget', 'breaker', 'upstream', 'client', 'signal', 'metric'];

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Checks the shape the real API requires; returns an error message or undefined. */
export function validateMessages(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') return 'model: Field required';
  if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1) return 'max_tokens: must be a positive integer';
  if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: at least one message is required';
  return undefined;
}

/** Text of a content value: a string, or blocks with `text`. Cached blocks are reported separately. */
function collect(content: unknown, plain: string[], cached: string[]): void {
  if (typeof content === 'string') {
    plain.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) {
    if (typeof block !== 'object' || block === null) continue;
    const b = block as { text?: unknown; cache_control?: unknown; content?: unknown };
    const text = typeof b.text === 'string' ? b.text : JSON.stringify(b);
    if (b.cache_control !== undefined) cached.push(text);
    else plain.push(text);
  }
}

export interface PromptText {
  plain: string;
  /** The prompt prefix marked with cache_control ('' when none). */
  cached: string;
  lastUser: string;
}

export function promptText(req: { system?: unknown; messages?: unknown[] }): PromptText {
  const plain: string[] = [];
  const cached: string[] = [];
  collect(req.system, plain, cached);
  let lastUser = '';
  for (const m of req.messages ?? []) {
    if (typeof m !== 'object' || m === null) continue;
    const msg = m as { role?: unknown; content?: unknown };
    const parts: string[] = [];
    collect(msg.content, parts, cached);
    plain.push(...parts);
    if (msg.role === 'user') lastUser = parts.join(' ');
  }
  return { plain: plain.join('\n'), cached: cached.join('\n'), lastUser };
}

export function tokensOf(text: string): number {
  return text === '' ? 0 : Math.ceil(text.length / 4);
}

/** Remembers cache_control prefixes it has seen: first sight creates, later sights read. Bounded. */
export class PromptCache {
  private readonly seen = new Set<string>();
  constructor(private readonly capacity = 10_000) {}

  /** Returns true when the prefix was already cached, and remembers it. */
  touch(prefix: string): boolean {
    const key = sha256(prefix);
    if (this.seen.has(key)) return true;
    if (this.seen.size >= this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(key);
    return false;
  }

  clear(): void {
    this.seen.clear();
  }
}

export interface Answer {
  id: string;
  /** Words of the answer, each with its leading space except the first. */
  pieces: string[];
  stopReason: 'end_turn' | 'max_tokens';
  usage: Usage;
}

/** The answer depends on the request without its `stream` flag: streamed and plain calls agree. */
export function answerFor(req: MessagesRequest, cache: PromptCache): Answer {
  const { stream: _stream, ...rest } = req;
  const digest = sha256(JSON.stringify(rest));
  const prompt = promptText(req);
  const lead = `Mock reply to: ${prompt.lastUser.slice(0, 60)}`.trim();
  const extra = 5 + (parseInt(digest.slice(0, 8), 16) % 20);
  const words = [...lead.split(/\s+/)];
  for (let i = 0; i < extra; i++) words.push(WORDS[parseInt(digest.slice(8 + (i % 24), 10 + (i % 24)), 16) % WORDS.length] as string);
  const stopReason = words.length > req.max_tokens ? 'max_tokens' : 'end_turn';
  const emitted = words.slice(0, req.max_tokens);
  const cachedTokens = tokensOf(prompt.cached);
  const hit = cachedTokens > 0 && cache.touch(prompt.cached);
  return {
    id: `msg_mock_${digest.slice(0, 24)}`,
    pieces: emitted.map((w, i) => (i === 0 ? w : ` ${w}`)),
    stopReason,
    usage: {
      input_tokens: Math.max(1, tokensOf(prompt.plain)),
      output_tokens: emitted.length,
      cache_creation_input_tokens: hit ? 0 : cachedTokens,
      cache_read_input_tokens: hit ? cachedTokens : 0,
      cache_creation: { ephemeral_5m_input_tokens: hit ? 0 : cachedTokens, ephemeral_1h_input_tokens: 0 },
      service_tier: 'standard',
    },
  };
}

export function countTokens(req: { system?: unknown; messages?: unknown[] }): number {
  const prompt = promptText(req);
  return Math.max(1, tokensOf(prompt.plain) + tokensOf(prompt.cached));
}
