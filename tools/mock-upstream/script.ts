import { FAULT_KINDS, type FaultKind, type FaultPlan } from './faults.js';

/**
 * Failure scripts: what one mock instance does over time, so several mocks can play the parts of a
 * failover (a primary that goes down and comes back, a secondary that stays healthy, a key that is
 * rate limited). A script is a list of steps, each bounded by a number of API requests or by a
 * duration; after the last step the mock is healthy again, unless the script repeats.
 *
 * Shorthand (MOCK_SCRIPT, POST /_mock/script as text): comma-separated tokens
 *   healthy[:B]            answer normally
 *   down[:D]               refuse connections (the mock stops listening); only a duration bound
 *   <status>[:B]           answer that status (400..599) with the API's error body, e.g. 529:3
 *   <fault kind>[:B]       a fault of faults.ts, or first-event-error (a stream whose first event is `error`)
 *   repeat                 start again after the last step (every step must then be bounded)
 *   rate-limit:R/W[/T]     per API key: R requests (and T estimated tokens) per window W; 429 past it
 * where B is a bound, `N` requests or a duration D (`Nms` or `Ns`). Only the last step may be unbounded.
 * Examples: `down:5s`, `529:3`, `529:2s`, `healthy:20s,down:10s,repeat`, `rate-limit:5/60s`.
 */

export type StepAction = { do: 'healthy' } | { do: 'down' } | { do: 'status'; status: number } | { do: 'fault'; kind: FaultKind };

export type ScriptStep = StepAction & {
  /** The step ends after this many API requests... */
  requests?: number;
  /** ...or after this many milliseconds. Neither: it lasts until the script is replaced. */
  ms?: number;
};

export interface KeyBudgetSpec {
  /** Requests per window and key. */
  requests: number;
  /** Estimated tokens (request bytes / 4) per window and key; default unlimited (reported as 2,000,000). */
  tokens?: number;
  windowMs: number;
}

export interface MockScript {
  steps: ScriptStep[];
  repeat: boolean;
  rateLimit?: KeyBudgetSpec;
}

/** What the current step does to one API request. */
export type ScriptEffect = { down: true } | { down: false; fault: FaultPlan };

const MAX_STEPS = 64;
const MAX_MS = 24 * 3600_000;
const MAX_REQUESTS = 1_000_000;

function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s)$/.exec(text);
  if (m === null) return undefined;
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  return ms >= 1 && ms <= MAX_MS ? ms : undefined;
}

function parseAction(name: string): StepAction | undefined {
  if (name === 'healthy' || name === 'down') return { do: name };
  if (/^\d{3}$/.test(name)) {
    const status = Number(name);
    return status >= 400 && status <= 599 ? { do: 'status', status } : undefined;
  }
  return (FAULT_KINDS as readonly string[]).includes(name) ? { do: 'fault', kind: name as FaultKind } : undefined;
}

/** Parses the shorthand; returns the script or a message naming the bad token. */
export function parseScript(text: string): MockScript | string {
  const tokens = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const script: MockScript = { steps: [], repeat: false };
  for (const token of tokens) {
    if (token === 'repeat') {
      script.repeat = true;
      continue;
    }
    const [name = '', bound, ...rest] = token.split(':');
    if (rest.length > 0) return `script token "${token}": at most one ":"`;
    if (name === 'rate-limit') {
      const [r, w, t, ...more] = (bound ?? '').split('/');
      const requests = Number(r);
      const windowMs = parseDuration(w ?? '');
      const tokensPerWindow = t === undefined ? undefined : Number(t);
      if (more.length > 0 || !Number.isInteger(requests) || requests < 1 || requests > MAX_REQUESTS || windowMs === undefined) {
        return `script token "${token}": rate-limit:<requests>/<window, e.g. 60s>[/<tokens>]`;
      }
      if (tokensPerWindow !== undefined && (!Number.isInteger(tokensPerWindow) || tokensPerWindow < 1)) return `script token "${token}": tokens must be a positive integer`;
      script.rateLimit = { requests, windowMs, ...(tokensPerWindow === undefined ? {} : { tokens: tokensPerWindow }) };
      continue;
    }
    const action = parseAction(name);
    if (action === undefined) return `script token "${token}": unknown action "${name}" (healthy, down, a status 400..599, ${FAULT_KINDS.join(', ')}, repeat, rate-limit)`;
    const step: ScriptStep = { ...action };
    if (bound !== undefined) {
      const ms = parseDuration(bound);
      if (ms !== undefined) step.ms = ms;
      else if (/^\d{1,7}$/.test(bound) && Number(bound) >= 1) step.requests = Number(bound);
      else return `script token "${token}": the bound must be a request count (e.g. 3) or a duration (e.g. 500ms, 5s)`;
    }
    script.steps.push(step);
  }
  const problem = checkScript(script);
  return problem ?? script;
}

/** The rules a script must keep whatever its form; a message or undefined. */
function checkScript(script: MockScript): string | undefined {
  if (script.steps.length > MAX_STEPS) return `a script has at most ${MAX_STEPS} steps`;
  for (const [i, step] of script.steps.entries()) {
    const last = i === script.steps.length - 1;
    if (step.do === 'down' && step.requests !== undefined) return `step ${i + 1}: down can only be bounded by a duration (no request reaches a mock that is down)`;
    if (step.requests === undefined && step.ms === undefined && (!last || script.repeat)) {
      return `step ${i + 1}: only the last step may be unbounded, and none when the script repeats`;
    }
  }
  if (script.repeat && script.steps.length === 0) return 'repeat needs at least one step';
  return undefined;
}

/** Validates the object form posted to /_mock/script (`{steps, repeat, rateLimit}`). */
export function validateScript(value: unknown): MockScript | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a script must be an object {steps, repeat, rateLimit}, a shorthand string, or null';
  const v = value as Record<string, unknown>;
  if (v.steps !== undefined && !Array.isArray(v.steps)) return 'steps must be an array';
  const script: MockScript = { steps: [], repeat: v.repeat === true };
  for (const [i, raw] of ((v.steps as unknown[] | undefined) ?? []).entries()) {
    if (typeof raw !== 'object' || raw === null) return `step ${i + 1} must be an object`;
    const s = raw as Record<string, unknown>;
    const action = typeof s.do === 'string' ? parseAction(s.do) : undefined;
    const statusAction = s.do === 'status' && typeof s.status === 'number' ? parseAction(String(s.status)) : undefined;
    const faultAction = s.do === 'fault' && typeof s.kind === 'string' ? parseAction(s.kind) : undefined;
    const chosen = statusAction ?? faultAction ?? action;
    if (chosen === undefined) return `step ${i + 1}: do must be healthy, down, status (with status 400..599) or fault (with kind one of ${FAULT_KINDS.join('|')})`;
    const step: ScriptStep = { ...chosen };
    if (s.requests !== undefined) {
      if (typeof s.requests !== 'number' || !Number.isInteger(s.requests) || s.requests < 1 || s.requests > MAX_REQUESTS) return `step ${i + 1}: requests must be a positive integer`;
      step.requests = s.requests;
    }
    if (s.ms !== undefined) {
      if (typeof s.ms !== 'number' || !Number.isInteger(s.ms) || s.ms < 1 || s.ms > MAX_MS) return `step ${i + 1}: ms must be a positive integer up to ${MAX_MS}`;
      step.ms = s.ms;
    }
    if (step.requests !== undefined && step.ms !== undefined) return `step ${i + 1}: bound by requests or ms, not both`;
    script.steps.push(step);
  }
  if (v.rateLimit !== undefined) {
    const r = v.rateLimit as Record<string, unknown> | null;
    const ok = (n: unknown, max: number): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max;
    if (r === null || typeof r !== 'object' || !ok(r.requests, MAX_REQUESTS) || !ok(r.windowMs, MAX_MS) || (r.tokens !== undefined && !ok(r.tokens, Number.MAX_SAFE_INTEGER))) {
      return 'rateLimit must be {requests, windowMs[, tokens]} with positive integers';
    }
    script.rateLimit = { requests: r.requests, windowMs: r.windowMs, ...(r.tokens === undefined ? {} : { tokens: r.tokens }) };
  }
  return checkScript(script) ?? script;
}

/**
 * A script being played. Time comes from `now` (injectable, so the stepping is tested without
 * waiting). Invariant: `index` < steps.length while the script runs; `index` === steps.length
 * means it ended and the mock is healthy. A timed step ends at exactly startedAt + ms, so a late
 * look at the clock never stretches the script.
 */
export class ScriptPlayer {
  private index = 0;
  private startedAt: number;
  private requestsInStep = 0;

  constructor(
    readonly script: MockScript,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  private advance(at: number): void {
    this.index++;
    this.startedAt = at;
    this.requestsInStep = 0;
    if (this.index >= this.script.steps.length && this.script.repeat) this.index = 0;
  }

  /** The step in force at `now()`, after ending every timed step that expired. */
  private current(): ScriptStep | undefined {
    const now = this.now();
    // Bounded: every step of a repeating script is bounded, and a timed step only ends once per `ms`.
    for (let guard = 0; guard < 100_000; guard++) {
      const step = this.script.steps[this.index];
      if (step?.ms === undefined || now < this.startedAt + step.ms) return step;
      this.advance(this.startedAt + step.ms);
    }
    return this.script.steps[this.index];
  }

  /** Whether the mock should refuse connections now. */
  isDown(): boolean {
    return this.current()?.do === 'down';
  }

  /** When the current step ends by time (ms since epoch), for a timer that brings a down mock back. */
  nextChangeAt(): number | undefined {
    const step = this.current();
    return step?.ms === undefined ? undefined : this.startedAt + step.ms;
  }

  /** The effect on one API request; counts it against a request-bounded step. */
  take(): ScriptEffect {
    const step = this.current();
    if (step === undefined) return { down: false, fault: {} };
    if (step.requests !== undefined && ++this.requestsInStep >= step.requests) this.advance(this.now());
    if (step.do === 'down') return { down: true };
    if (step.do === 'status') return { down: false, fault: { status: step.status } };
    if (step.do === 'fault') return { down: false, fault: { kind: step.kind } };
    return { down: false, fault: {} };
  }

  /** Where the script is, for GET /_mock/script. */
  position(): { step: number | null; down: boolean } {
    const step = this.current();
    return { step: step === undefined ? null : this.index + 1, down: step?.do === 'down' };
  }
}
