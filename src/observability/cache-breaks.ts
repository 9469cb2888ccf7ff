import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { blockAt, PART_ORDER, scanPromptBlocks, type PromptBlocks, type PromptPart } from '../core/prompt-blocks.js';
import type { TokenUsage } from '../core/token-usage.js';
import type { CellCounter } from './metric-cells.js';
import type { ModeLabels } from './labels.js';

/**
 * Prompt-cache break detection. Per session (the `x-claude-code-session-id` header Claude Code
 * sends, or `x-gateway-session` for other clients) and tenant, the prompt blocks of the session's
 * previous request up to its last cache_control breakpoint are kept as hashes (core/prompt-blocks.ts);
 * a request that differs from them in a block before that breakpoint (or names another model)
 * has made the API re-write a cache it could have read: it is counted in
 * `claude_prompt_cache_breaks_total{mode,part}` and logged at info with the block that changed and
 * the tokens re-written (the answer's `cache_creation_input_tokens`, or an estimate of bytes/4 when
 * the answer carried no usage).
 *
 * Bounds: at most `maxSessions` sessions (LRU) and `maxStoredBlocks` hashes across them (4 bytes
 * each; the least recently seen sessions go first), at most MODELS_PER_SESSION models per session,
 * `maxBlocks` blocks per part of one request. Requests without a session header cost nothing.
 *
 * Models: the cache is per model, so a session keeps one state per model it used (Claude Code sends
 * small side calls on another model in the same session): a request on a model the session used
 * before is compared with that model's last request; a model the session has not used yet, after a
 * request that wrote a cache, is a `model` break when the request writes a cache itself.
 */

/** Session ids are client labels, not secrets: this shape or the request is not tracked. */
const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const SESSION_HEADERS = ['x-claude-code-session-id', 'x-gateway-session'] as const;
const MODELS_PER_SESSION = 3;
/** The estimate when the answer carried no usage: about four bytes of JSON per token. */
const BYTES_PER_TOKEN = 4;

export type BreakPart = PromptPart | 'model';

export interface CacheBreakOptions {
  /** Sessions tracked at most (LRU). */
  maxSessions: number;
  /** Block hashes kept at most across all sessions. */
  maxStoredBlocks: number;
  /** Blocks per part of one request looked at (tools, system, messages each). */
  maxBlocks: number;
}

export const CACHE_BREAK_DEFAULTS: CacheBreakOptions = { maxSessions: 10_000, maxStoredBlocks: 2_000_000, maxBlocks: 4_096 };

/** A request's last prompt blocks on one model, up to its last breakpoint. */
interface ModelState {
  model: string | undefined;
  hashes: Uint32Array;
  tools: number;
  system: number;
}

interface SessionState {
  /** Most recently used first. */
  models: ModelState[];
  stored: number;
}

/** A break found when the request arrived, reported (logged) once its call ended. */
export interface CacheBreak {
  readonly session: string;
  readonly mode: string;
  readonly part: BreakPart;
  /** `tools[3]`, `system[0]`, `messages[5]`, or `model`. */
  readonly block: string;
  readonly model: string | undefined;
  readonly previousModel: string | undefined;
  /** bytes/4 of the blocks from the break to this request's last breakpoint. */
  readonly estimatedTokens: number;
}

export function sessionOf(headers: IncomingHttpHeaders): string | undefined {
  for (const name of SESSION_HEADERS) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) return SESSION_ID.test(value) ? value : undefined;
  }
  return undefined;
}

export class CacheBreaks {
  /** Insertion order is recency: a seen session is deleted and set again. */
  private readonly sessions = new Map<string, SessionState>();
  private stored = 0;

  constructor(
    private readonly counter: CellCounter<'mode' | 'part'>,
    private readonly modes: ModeLabels,
    private readonly logger: Logger,
    private readonly options: CacheBreakOptions = CACHE_BREAK_DEFAULTS,
  ) {}

  /** Sessions tracked now (for tests). */
  get size(): number {
    return this.sessions.size;
  }

  /** Hashes kept now (for tests). */
  get storedBlocks(): number {
    return this.stored;
  }

  /**
   * Compares a Messages request of `session` (for `tenant`) with the session's previous one, counts
   * a break, and remembers this request's blocks when it has a breakpoint. The break is returned
   * for `report` once the call ended.
   */
  inspect(tenant: string, session: string, mode: string, model: string | undefined, body: Buffer): CacheBreak | undefined {
    const blocks = scanPromptBlocks(body, this.options.maxBlocks);
    const key = `${tenant}\u0000${session}`;
    const state = this.sessions.get(key);
    let found: { part: BreakPart; block: string; from: number } | undefined;
    let previousModel: string | undefined;
    if (state !== undefined) {
      this.sessions.delete(key);
      this.sessions.set(key, state);
      const same = state.models.find((m) => m.model === model);
      const latest = state.models[0] as ModelState;
      if (same !== undefined) found = divergence(same, blocks);
      else if (latest.hashes.length > 0 && blocks.lastBreakpoint >= 0) {
        found = { part: 'model', block: 'model', from: 0 };
        previousModel = latest.model;
      }
    }
    if (blocks.lastBreakpoint >= 0) this.remember(key, state, model, blocks);
    if (found === undefined) return undefined;
    const label = this.modes.known(mode);
    this.counter.inc({ mode: label, part: found.part });
    let bytes = 0;
    for (let i = found.from; i <= blocks.lastBreakpoint; i++) bytes += blocks.sizes[i] as number;
    return { session, mode: label, part: found.part, block: found.block, model, previousModel, estimatedTokens: Math.ceil(bytes / BYTES_PER_TOKEN) };
  }

  /** Logs a break once its call ended: with the answer's cache writes when it reported usage, else the estimate. */
  report(found: CacheBreak, usage: TokenUsage | undefined): void {
    const { estimatedTokens, ...rest } = found;
    const tokens = usage === undefined ? { rewrittenTokens: estimatedTokens, tokensFrom: 'estimate' } : { rewrittenTokens: usage.cache_creation, tokensFrom: 'usage' };
    this.logger.info({ cacheBreak: { ...rest, ...tokens } }, `prompt cache break: ${found.block} changed`);
  }

  private remember(key: string, state: SessionState | undefined, model: string | undefined, blocks: PromptBlocks): void {
    const kept = Math.min(blocks.lastBreakpoint + 1, this.options.maxStoredBlocks);
    const entry: ModelState = { model, hashes: blocks.hashes.slice(0, kept), tools: blocks.tools, system: blocks.system };
    let session = state;
    if (session === undefined) {
      session = { models: [], stored: 0 };
      this.sessions.set(key, session);
    }
    const old = session.models.findIndex((m) => m.model === model);
    const dropped = old >= 0 ? session.models.splice(old, 1) : session.models.length >= MODELS_PER_SESSION ? session.models.splice(-1, 1) : [];
    for (const d of dropped) this.account(session, -d.hashes.length);
    session.models.unshift(entry);
    this.account(session, kept);
    this.evict(key);
  }

  private account(session: SessionState, delta: number): void {
    session.stored += delta;
    this.stored += delta;
  }

  /** Oldest sessions go while either bound is exceeded; the session just seen (`keep`) stays. */
  private evict(keep: string): void {
    for (const [key, session] of this.sessions) {
      if (this.sessions.size <= this.options.maxSessions && this.stored <= this.options.maxStoredBlocks) return;
      if (key === keep) continue;
      this.sessions.delete(key);
      this.stored -= session.stored;
    }
  }
}

/**
 * The first block, up to `previous`'s last breakpoint (its last kept hash), where `next` differs:
 * a different hash, a block missing, or blocks of a different part there (then the earlier part
 * in the API's order is named: a tool added before the system blocks is a `tools` break).
 */
function divergence(previous: ModelState, next: PromptBlocks): { part: BreakPart; block: string; from: number } | undefined {
  const end = previous.hashes.length;
  for (let i = 0; i < end; i++) {
    const was = blockAt(previous, i);
    if (i >= next.hashes.length) return named(was, i);
    const now = blockAt(next, i);
    if (was.part !== now.part) return named(PART_ORDER.indexOf(was.part) < PART_ORDER.indexOf(now.part) ? was : now, i);
    if (previous.hashes[i] !== next.hashes[i]) return named(now, i);
  }
  return undefined;
}

function named(at: { part: PromptPart; index: number }, from: number): { part: BreakPart; block: string; from: number } {
  return { part: at.part, block: `${at.part}[${at.index}]`, from };
}
