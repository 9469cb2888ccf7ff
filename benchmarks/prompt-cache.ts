import { Pool } from 'undici';
import { PriceTable } from '../src/core/pricing.js';
import type { TokenUsage } from '../src/core/token-usage.js';

/**
 * The prompt-cache benchmark (issue 28): what cache-affinity routing saves on a pool of keys.
 * Claude-Code-like sessions against the caching mock (tools/mock-upstream/prompt-cache.ts), the
 * same workload through three gateway configurations: one key (the upper bound: every session's
 * cache lives on it), three equal-weight keys without affinity, three keys with affinity.
 *
 * A session: the same 20 tools (about 12k tokens) and base system prompt (about 6k) for everyone,
 * then a per-project system block (about 2k: working directory, CLAUDE.md), so a 20k-token head
 * that differs between projects; `cache_control` where Claude Code puts it, on the last system
 * block and on the last message; 20 turns, each adding the assistant's answer and a new user
 * message. The sessions are interleaved: round r sends turn r of every session, `concurrency` at a
 * time. Bounded: sessions x turns calls per configuration, loopback only.
 */

const MODEL = 'claude-sonnet-5';

export interface PromptCacheWorkload {
  sessions: number;
  turns: number;
  concurrency: number;
}

export const PROMPT_CACHE_WORKLOAD: PromptCacheWorkload = { sessions: 60, turns: 20, concurrency: 12 };

export interface PromptCacheResult {
  calls: number;
  errors: number;
  tokens: TokenUsage;
  /** cache_read / (input + cache_creation + cache_read). */
  readShare: number;
  usd: number;
  /** Calls served by each key (x-gateway-upstream). */
  perKey: Record<string, number>;
  seconds: number;
}

function words(seed: string, chars: number): string {
  const base = `${seed} alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu `;
  return base.repeat(Math.ceil(chars / base.length)).slice(0, chars);
}

// Shared by every session: 20 tool definitions of about 2,400 characters and a base system prompt.
const TOOLS = Array.from({ length: 20 }, (_, i) => ({
  name: `tool_${i}`,
  description: words(`tool ${i} does`, 2_300),
  input_schema: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path'] },
}));
const BASE_SYSTEM = words('You are Claude Code, an interactive CLI tool.', 24_000);

function sessionBody(session: number, turn: number): string {
  const messages: unknown[] = [];
  for (let t = 0; t <= turn; t++) {
    messages.push({ role: 'user', content: [{ type: 'text', text: words(`session ${session} turn ${t} asks`, 600) }] });
    if (t < turn) messages.push({ role: 'assistant', content: [{ type: 'text', text: words(`session ${session} turn ${t} answers`, 800) }] });
  }
  const last = messages[messages.length - 1] as { content: Record<string, unknown>[] };
  (last.content[0] as Record<string, unknown>).cache_control = { type: 'ephemeral' };
  // The body in Claude Code's key order: messages before system and tools.
  return JSON.stringify({
    model: MODEL,
    max_tokens: 32,
    messages,
    system: [
      { type: 'text', text: BASE_SYSTEM },
      { type: 'text', text: words(`Working directory /work/project-${session}; CLAUDE.md of project ${session}:`, 8_000), cache_control: { type: 'ephemeral' } },
    ],
    tools: TOOLS,
    metadata: { user_id: `session-${session}` },
  });
}

interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** Runs the workload against the gateway at `url` (with `apiKey` as its gateway key). */
export async function promptCacheRun(url: string, apiKey: string, workload: PromptCacheWorkload = PROMPT_CACHE_WORKLOAD): Promise<PromptCacheResult> {
  const pool = new Pool(url, { connections: workload.concurrency });
  const tokens: TokenUsage = { input: 0, output: 0, cache_creation: 0, cache_read: 0 };
  const perKey: Record<string, number> = {};
  let calls = 0;
  let errors = 0;
  const started = performance.now();
  try {
    for (let turn = 0; turn < workload.turns; turn++) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < workload.sessions) {
          const session = next++;
          const res = await pool.request({
            method: 'POST',
            path: '/v1/messages',
            headers: { 'content-type': 'application/json', 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' },
            body: sessionBody(session, turn),
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
          const text = await res.body.text();
          calls++;
          if (res.statusCode !== 200) {
            errors++;
            continue;
          }
          const upstream = String(res.headers['x-gateway-upstream'] ?? 'unknown');
          perKey[upstream] = (perKey[upstream] ?? 0) + 1;
          const usage = (JSON.parse(text) as { usage: Usage }).usage;
          tokens.input += usage.input_tokens;
          tokens.output += usage.output_tokens;
          tokens.cache_creation += usage.cache_creation_input_tokens;
          tokens.cache_read += usage.cache_read_input_tokens;
        }
      };
      await Promise.all(Array.from({ length: workload.concurrency }, worker));
    }
  } finally {
    await pool.close();
  }
  const prompt = tokens.input + tokens.cache_creation + tokens.cache_read;
  return {
    calls,
    errors,
    tokens,
    readShare: prompt === 0 ? 0 : tokens.cache_read / prompt,
    usd: new PriceTable().costUsd(MODEL, tokens),
    perKey,
    seconds: (performance.now() - started) / 1000,
  };
}
