import { answerValue, type AnswerHeaders } from './header-list.js';
import { requestedDelayMs } from './retry.js';

/**
 * What one upstream credential has left, as its answers report it: Anthropic sends
 * `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining}` on every
 * answer. Headroom is the smallest remaining/limit ratio reported (1 when nothing was reported), so
 * a key near any of its limits gets less traffic before it answers 429. A 429 rests the key until
 * its `retry-after` (or the soonest `-reset` it reported, or 1 s), bounded by `maxRestMs`.
 */

const LIMITS = ['requests', 'tokens', 'input-tokens', 'output-tokens'] as const;
/** Each limit's header names, built once (read on every answer of a gateway-held key). */
const LIMIT_NAMES = LIMITS.map((kind) => ({
  limit: `anthropic-ratelimit-${kind}-limit`,
  remaining: `anthropic-ratelimit-${kind}-remaining`,
  reset: `anthropic-ratelimit-${kind}-reset`,
}));


/** Smallest remaining/limit ratio the headers report, or undefined when they report none. */
export function reportedHeadroom(headers: AnswerHeaders): number | undefined {
  let least: number | undefined;
  for (let i = 0; i < LIMIT_NAMES.length; i++) {
    const names = LIMIT_NAMES[i] as (typeof LIMIT_NAMES)[number];
    const limit = Number(answerValue(headers, names.limit));
    const remaining = Number(answerValue(headers, names.remaining));
    if (!Number.isFinite(limit) || !Number.isFinite(remaining) || limit <= 0 || remaining < 0) continue;
    const ratio = Math.min(1, remaining / limit);
    least = least === undefined ? ratio : Math.min(least, ratio);
  }
  return least;
}

/** How long a 429 asks the key to rest: retry-after, else the soonest reset reported, else 1 s. */
export function restMs(headers: AnswerHeaders, now: number, maxRestMs: number): number {
  const asked = requestedDelayMs(headers);
  if (asked !== undefined) return Math.min(Math.max(asked, 0), maxRestMs);
  let soonest: number | undefined;
  for (const names of LIMIT_NAMES) {
    const reset = Date.parse(answerValue(headers, names.reset) ?? '');
    if (Number.isFinite(reset) && reset > now) soonest = soonest === undefined ? reset - now : Math.min(soonest, reset - now);
  }
  return Math.min(soonest ?? 1_000, maxRestMs);
}

/** One credential's standing: its headroom and, after a 429, when it may be used again. */
export class Headroom {
  /** 0..1; 1 = no limit reported. Never 0 in the weighting (a floor keeps a trickle for fresh reports). */
  private ratio = 1;
  private restedUntil = 0;

  constructor(private readonly maxRestMs = 60_000) {}

  /** Reads the rate-limit headers of one answer; a 429 rests the key. */
  note(status: number, headers: AnswerHeaders, now = Date.now()): void {
    const reported = reportedHeadroom(headers);
    if (reported !== undefined) this.ratio = reported;
    if (status === 429) this.restedUntil = now + restMs(headers, now, this.maxRestMs);
  }

  /** The share of its limit the last answer reported left, 0..1 (1: none reported). */
  get reported(): number {
    return this.ratio;
  }

  resting(now = Date.now()): boolean {
    return now < this.restedUntil;
  }

  /** Milliseconds until a rested key may be used again (0 when not resting). */
  restLeftMs(now = Date.now()): number {
    return Math.max(0, this.restedUntil - now);
  }

  /** The factor applied to the upstream's weight: headroom, floored at 5%. */
  factor(): number {
    return Math.max(0.05, this.ratio);
  }
}
