import { createHash } from 'node:crypto';
import type { CachePrefix } from '../../core/json-scan.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { Upstream } from '../../upstream/upstreams.js';
import { chooseFirst, withFirst, type AffinityMoveReason } from './choose.js';
import type { SharedAffinity } from './shared-affinity.js';
import type { AffinityTable } from './table.js';

/**
 * Cache-affinity routing: among the upstreams (keys) that may serve a call, prefer the one that
 * last served the same cached head for this tenant while that head is warm there, so a session's
 * prompt cache is read instead of written again on every key of a pool.
 *
 * The identity (`AffinityKey`): tenant, model and the digest of the request's `tools` and `system`
 * values when they carry a `cache_control` breakpoint, i.e. the prefix through the FIRST breakpoint
 * region of Claude Code's requests. Not the prefix through the LAST breakpoint: Claude Code moves
 * its last breakpoint to the newest message every turn, so that identity is new on every turn and
 * would never be found again. The head is stable for the whole session (and differs between
 * projects: the system prompt carries the working directory, CLAUDE.md, git status). The digest is
 * taken by the body's one validating scan (core/json-scan.ts), never by a second parse.
 *
 * What overrides it (choose.ts): another tier, an open breaker for the call's model on that
 * upstream (not a half-open one: its next call is the probe that may close it), a key resting after a 429, or headroom below MIN_HEADROOM. Each call with an
 * identity is counted in `cache_affinity_total{result="hit|miss|moved", reason}`.
 *
 * The table: local and bounded (table.ts); with REDIS_URL also shared (SharedAffinity), read only
 * when the local table has nothing, within the Redis command deadline (a slow Redis answers
 * nothing: the local choice stands), written after every accepted answer.
 */

/** A key that reported less than this share of any rate limit left is not preferred (the call spreads instead). */
export const MIN_HEADROOM = 0.1;

const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

/** A call's affinity identity and how long its head stays warm upstream. */
export interface AffinityKey {
  readonly key: string;
  readonly ttlMs: number;
}

/** The identity of a call whose head carries a breakpoint; undefined without a tenant or a cached head. */
export function affinityKey(tenant: string | undefined, model: string | undefined, prefix: CachePrefix | undefined): AffinityKey | undefined {
  if (tenant === undefined || prefix === undefined) return undefined;
  const m = model ?? '';
  const key = createHash('sha256').update(`${tenant.length}:${tenant}${m.length}:${m}`).update(prefix.digest).digest('base64url');
  return { key, ttlMs: prefix.ttl1h ? TTL_MS['1h'] : TTL_MS['5m'] };
}

export interface CacheAffinityOptions {
  table: AffinityTable;
  shared: SharedAffinity | undefined;
  /** Whether the breaker of (upstream, model or endpoint) is open now, refusing calls (pipeline/breaker.ts). */
  refuses(upstream: string, model: string | undefined, endpoint: string): boolean;
  metrics: GatewayMetrics;
  now?: () => number;
}

/** What the route asks of a call. */
export interface AffinityCall {
  readonly affinity: AffinityKey | undefined;
  readonly model: string | undefined;
  readonly endpoint: string;
}

export class CacheAffinity {
  private readonly now: () => number;

  constructor(private readonly options: CacheAffinityOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The candidates with the one to try first in front (the plan's order otherwise). */
  async order(call: AffinityCall, candidates: readonly Upstream[]): Promise<readonly Upstream[]> {
    const affinity = call.affinity;
    if (affinity === undefined || candidates.length < 2) return candidates;
    const { table, shared, metrics } = this.options;
    const warm = table.get(affinity.key) ?? (shared === undefined ? undefined : await shared.get(affinity.key));
    const now = this.now();
    const unhealthy = (u: Upstream): AffinityMoveReason | undefined => {
      if (this.options.refuses(u.name, call.model, call.endpoint)) return 'circuit_open';
      if (u.headroom.resting(now)) return 'rested';
      if (u.headroom.factor() < MIN_HEADROOM) return 'headroom';
      return undefined;
    };
    const choice = chooseFirst(candidates, warm, unhealthy, (u) => table.pinnedTo(u.name));
    metrics.cacheAffinity.inc({ result: choice.result, reason: choice.reason });
    // A new placement is pinned at once (locally), so that calls choosing while this one runs see it:
    // a burst of new sessions spreads instead of all taking the same least-pinned key. The accepted
    // answer's upstream overwrites it (`served`).
    if (choice.result !== 'hit') table.set(affinity.key, (candidates[choice.first] as Upstream).name, affinity.ttlMs);
    return withFirst(candidates, choice.first);
  }

  /** The call's answer from `upstream` was accepted (2xx): its head is warm there now. */
  served(call: AffinityCall, upstream: string): void {
    const affinity = call.affinity;
    if (affinity === undefined) return;
    this.options.table.set(affinity.key, upstream, affinity.ttlMs);
    this.options.shared?.set(affinity.key, upstream, affinity.ttlMs);
  }
}
