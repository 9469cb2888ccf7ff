import { createHash } from 'node:crypto';

/**
 * The mock's prompt cache, billed like the API's (prompt caching: cache_control breakpoints).
 *
 * - The prompt is read as blocks in the API's cache order: each tool definition, then the system
 *   prompt's blocks, then each message's content blocks (a string content is one block). A block
 *   carrying `cache_control` is a breakpoint; at most 4 per request (more: 400, as the API says).
 * - Caches are per upstream credential: the `scope` (an API key; a Bedrock account and region; a
 *   Vertex project and region) and the model seed every prefix's key, so one key never reads what
 *   another wrote.
 * - A breakpoint whose prefix (everything up to and including its block) is shorter than the
 *   model's minimum cacheable length does not cache: no write, no read.
 * - On a request, the longest prefix already cached is found by checking each breakpoint and the
 *   20 block boundaries before it (the API's automatic prefix check), longest first. Its tokens are
 *   `cache_read_input_tokens` and its entry (and those of the request's shorter breakpoints) is
 *   refreshed to a full TTL, as a read does at the API. Everything after it up to the request's last
 *   breakpoint is `cache_creation_input_tokens`, split by the TTL of the breakpoint that covers it
 *   (`cache_creation.ephemeral_5m/1h_input_tokens`), and every breakpoint past the read prefix is
 *   written. The rest is `input_tokens`.
 * - Tokens: the mock's estimator, one token per 4 characters (rounded up) of the prompt's text
 *   joined block by block with a newline; read + created are the tokens of the joined text up to
 *   the last breakpoint, so read + created + input is what count_tokens says whatever was cached.
 * - Bounded: at most `capacity` prefixes (least recently used evicted first), each with its TTL
 *   (5 min, or 1 h for `ttl: "1h"`) on an injectable clock.
 */

export const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;
export type CacheTtl = keyof typeof TTL_MS;
export const MAX_BREAKPOINTS = 4;
/** Block boundaries the API checks for an earlier cache entry before each breakpoint. */
export const LOOKBACK_BLOCKS = 20;

/** The API's minimum cacheable prompt length, in tokens, by model family (Haiku needs more). */
export function minCacheableTokens(model: string): number {
  return /haiku/i.test(model) ? 2048 : 1024;
}

export interface PromptBlock {
  text: string;
  /** The breakpoint's TTL when the block carries `cache_control`; undefined otherwise. */
  ttl: CacheTtl | undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function ttlOf(block: Record<string, unknown>): CacheTtl | undefined {
  const control = block.cache_control;
  if (control === undefined || control === null) return undefined;
  return isObject(control) && control.ttl === '1h' ? '1h' : '5m';
}

/** A block's text: its `text` when it has one, else its JSON without `cache_control`. */
function blockText(block: Record<string, unknown>): string {
  if (typeof block.text === 'string') return block.text;
  const { cache_control: _cacheControl, ...rest } = block;
  return JSON.stringify(rest);
}

function blocksFrom(content: unknown, into: PromptBlock[]): void {
  if (typeof content === 'string') {
    into.push({ text: content, ttl: undefined });
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) if (isObject(block)) into.push({ text: blockText(block), ttl: ttlOf(block) });
}

/** The prompt's blocks in the API's cache order: tools, system, messages. */
export function promptBlocks(req: { system?: unknown; tools?: unknown; messages?: unknown }): PromptBlock[] {
  const blocks: PromptBlock[] = [];
  blocksFrom(req.tools, blocks);
  blocksFrom(req.system, blocks);
  for (const m of Array.isArray(req.messages) ? req.messages : []) if (isObject(m)) blocksFrom(m.content, blocks);
  return blocks;
}

/** The API's refusal of too many breakpoints, or undefined. */
export function breakpointProblem(blocks: readonly PromptBlock[]): string | undefined {
  const found = blocks.filter((b) => b.ttl !== undefined).length;
  return found > MAX_BREAKPOINTS ? `A maximum of ${MAX_BREAKPOINTS} blocks with cache_control may be provided. Found ${found}.` : undefined;
}

interface Entry {
  expiresAt: number;
  ttlMs: number;
}

/** Cached prefixes by key, least recently used first; each expires on its own TTL. */
export class PromptCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly capacity = 10_000,
    readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** True when the prefix is cached and fresh; a hit refreshes it to a full TTL (as a read does). */
  read(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    const now = this.now();
    if (entry.expiresAt <= now) return false;
    entry.expiresAt = now + entry.ttlMs;
    this.entries.set(key, entry);
    return true;
  }

  /** Caches a prefix for `ttlMs` (a longer TTL already held is kept). */
  write(key: string, ttlMs: number): void {
    const held = this.entries.get(key);
    this.entries.delete(key);
    if (held === undefined && this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    const keep = held !== undefined && held.expiresAt > this.now() ? Math.max(held.ttlMs, ttlMs) : ttlMs;
    this.entries.set(key, { expiresAt: this.now() + keep, ttlMs: keep });
  }

  clear(): void {
    this.entries.clear();
  }
}

export interface PromptBill {
  input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

/**
 * Bills a prompt against `cache` for credential `scope` (reading and writing it). Without a cache
 * (batch results) every cacheable prefix is a creation.
 */
export function billPrompt(blocks: readonly PromptBlock[], model: string, scope: string, cache?: PromptCache): PromptBill {
  // starts[i]: where block i starts in the joined text (blocks joined by '\n').
  const starts: number[] = [0];
  for (const b of blocks) starts.push((starts[starts.length - 1] as number) + b.text.length + 1);
  /** Tokens of the joined text of blocks [0, end). */
  const upTo = (end: number): number => (end === 0 ? 0 : Math.ceil(((starts[end] as number) - 1) / 4));
  /** Tokens of the joined text of blocks [from, end). */
  const between = (from: number, end: number): number => (end <= from ? 0 : Math.ceil(((starts[end] as number) - (starts[from] as number) - 1) / 4));

  const min = minCacheableTokens(model);
  // Breakpoints whose prefix is long enough to cache, in order.
  const points: number[] = [];
  blocks.forEach((b, i) => {
    if (b.ttl !== undefined && upTo(i + 1) >= min) points.push(i);
  });
  const last = points[points.length - 1];
  if (last === undefined) {
    return { input_tokens: Math.max(1, upTo(blocks.length)), cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 } };
  }
  // keys[i]: the prefix through block i, chained so that each block is hashed once.
  const keys: string[] = [];
  let chain = createHash('sha256').update(`${scope.length}:${scope}${model.length}:${model}`).digest('hex');
  for (let i = 0; i <= last; i++) {
    chain = createHash('sha256').update(chain).update('\0').update((blocks[i] as PromptBlock).text).digest('hex');
    keys.push(chain);
  }
  // The longest cached prefix: each breakpoint and the boundaries before it, longest first.
  let readThrough = -1;
  if (cache !== undefined) {
    const checked = new Set<number>();
    for (let p = points.length - 1; p >= 0 && readThrough < 0; p--) {
      const at = points[p] as number;
      for (let i = at; i >= Math.max(0, at - LOOKBACK_BLOCKS); i--) {
        if (checked.has(i)) continue;
        checked.add(i);
        if (cache.read(keys[i] as string)) {
          readThrough = i;
          break;
        }
      }
    }
    // A read refreshes the request's shorter breakpoints too (they are part of what was read).
    for (const at of points) if (at < readThrough) cache.read(keys[at] as string);
  }
  const created = { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 };
  let from = readThrough + 1;
  for (const at of points) {
    if (at < from) continue;
    const tokens = upTo(at + 1) - upTo(from);
    const ttl = (blocks[at] as PromptBlock).ttl as CacheTtl;
    created[ttl === '1h' ? 'ephemeral_1h_input_tokens' : 'ephemeral_5m_input_tokens'] += tokens;
    cache?.write(keys[at] as string, TTL_MS[ttl]);
    from = at + 1;
  }
  const read = readThrough < 0 ? 0 : upTo(readThrough + 1);
  return {
    input_tokens: Math.max(1, between(last + 1, blocks.length)),
    cache_read_input_tokens: read,
    cache_creation_input_tokens: upTo(last + 1) - read,
    cache_creation: created,
  };
}
