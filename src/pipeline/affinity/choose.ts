/**
 * The cache-affinity policy, pure: which of the planned candidates a call tries first. No I/O, no
 * clock; the caller says how healthy each candidate is.
 *
 * - Eligible: the candidates in the tier of the plan's first candidate (the best tier that has a
 *   ready key) that are healthy: breaker not open, not resting after a 429, headroom at or above the
 *   threshold. Affinity never reaches past the plan (what serves the call, tiers) nor past health.
 * - `hit`: the upstream that last served this prefix is eligible: it goes first.
 * - `moved`: it is known but not eligible (`reason` says why): the call goes elsewhere and is counted.
 * - `miss`: no upstream holds the prefix warm.
 * - A moved or missed call goes to the eligible candidate with the fewest pinned prefixes per unit
 *   of weight (ties: the plan's order, which is weighted-random), so new sessions spread evenly and
 *   stay where they landed. With nothing eligible the plan's order stands.
 */

export type AffinityResult = 'hit' | 'miss' | 'moved';
/** Why a warm upstream was not used. */
export type AffinityMoveReason = 'none' | 'circuit_open' | 'rested' | 'headroom' | 'not_serving';

export interface AffinityCandidate {
  readonly name: string;
  readonly tier: number;
  readonly weight: number;
}

export interface AffinityChoice {
  /** Index in the candidates of the one to try first. */
  readonly first: number;
  readonly result: AffinityResult;
  readonly reason: AffinityMoveReason;
}

export function chooseFirst<C extends AffinityCandidate>(
  candidates: readonly C[],
  warm: string | undefined,
  unhealthy: (candidate: C) => AffinityMoveReason | undefined,
  pinnedTo: (candidate: C) => number,
): AffinityChoice {
  const tier = candidates[0]?.tier;
  let warmAt = -1;
  let warmReason: AffinityMoveReason = 'not_serving';
  let best = -1;
  let bestLoad = Infinity;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i] as C;
    const why = c.tier === tier ? unhealthy(c) : 'not_serving';
    if (c.name === warm) {
      if (why === undefined) warmAt = i;
      else warmReason = why;
    }
    if (why !== undefined) continue;
    const load = pinnedTo(c) / Math.max(c.weight, 1e-9);
    if (load < bestLoad) {
      best = i;
      bestLoad = load;
    }
  }
  if (warmAt >= 0) return { first: warmAt, result: 'hit', reason: 'none' };
  const first = best < 0 ? 0 : best;
  return warm === undefined ? { first, result: 'miss', reason: 'none' } : { first, result: 'moved', reason: warmReason };
}

/** `candidates` with the one at `first` moved to the front, the others in their order. */
export function withFirst<C>(candidates: readonly C[], first: number): readonly C[] {
  if (first <= 0) return candidates;
  const chosen = candidates[first] as C;
  return [chosen, ...candidates.slice(0, first), ...candidates.slice(first + 1)];
}
