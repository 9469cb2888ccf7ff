import type { UpstreamClient, PoolSnapshot } from './client.js';
import type { AnswerHeaders } from './header-list.js';
import { Headroom } from './headroom.js';
import type { OutgoingRequest, UpstreamAdapter, UpstreamKind } from './kinds/kind.js';
import type { UpstreamTarget } from './targets.js';

/**
 * The configured upstreams at run time, and the order in which one call tries them.
 *
 * Invariants:
 * - A call only ever goes to an upstream whose adapter serves it and whose model map (if any) names
 *   its model.
 * - Stateless endpoints (messages, count_tokens, models) spread over a tier by weight x headroom;
 *   a rested key (after a 429) comes after every key that is not resting.
 * - Stateful endpoints (batches, files, and everything the gateway does not know) always try the
 *   upstreams in configuration order within their tier: a batch created through one key must be
 *   read back through the same one, so they never spread.
 */

/** Endpoints whose calls carry no server-side state: any upstream (key) may answer them. */
const STATELESS = new Set(['messages', 'count_tokens', 'models']);

export class Upstream {
  readonly name: string;
  readonly kind: UpstreamKind;
  readonly tier: number;
  readonly weight: number;
  /** host[:port], for spans. */
  readonly host: string;
  /** Origin + path prefix, e.g. https://api.anthropic.com (batch `results_url` rewriting). */
  readonly baseUrl: string;
  readonly headroom: Headroom;
  /** The gateway holds this upstream's credential: its 429s and 401s are about the gateway's key, not the client's. */
  readonly holdsCredentials: boolean;
  private readonly models: ReadonlyMap<string, string> | undefined;

  constructor(
    target: UpstreamTarget,
    readonly client: UpstreamClient,
    readonly adapter: UpstreamAdapter,
  ) {
    this.name = target.name;
    this.kind = target.kind;
    this.tier = target.tier;
    this.weight = target.weight;
    this.models = target.models;
    this.host = new URL(target.origin).host;
    this.baseUrl = target.origin + target.pathPrefix;
    this.headroom = new Headroom();
    this.holdsCredentials = target.holdsCredentials;
  }

  /** The model id this upstream runs for the client's `model`; null when it does not serve it. */
  modelFor(model: string | undefined): string | undefined | null {
    if (this.models === undefined || model === undefined) return model;
    return this.models.get(model) ?? null;
  }

  /**
   * Learns from an answer's head: rate-limit headroom, and a rest after a 429. Only for gateway-held
   * keys: in pass-through mode the limits reported are the client's own, and one client's 429 must
   * not steer anyone else's traffic.
   */
  note(status: number, headers: AnswerHeaders): void {
    if (this.holdsCredentials) this.headroom.note(status, headers);
  }
}

/** What the route needs to know of a call to plan it. */
export type Plannable = Pick<OutgoingRequest, 'method' | 'path' | 'endpoint' | 'headers' | 'body'> & { readonly model: string | undefined };

export interface Plan {
  /** Upstreams to try, in order. */
  readonly candidates: readonly Upstream[];
  /** Why none serves the call, when `candidates` is empty. */
  readonly refusal: string | undefined;
}

export class UpstreamSet {
  readonly all: readonly Upstream[];
  /** Tiers in ascending order, each in configuration order. */
  private readonly tiers: readonly (readonly Upstream[])[];

  constructor(
    upstreams: readonly Upstream[],
    private readonly random: () => number = Math.random,
  ) {
    if (upstreams.length === 0) throw new Error('at least one upstream is required');
    this.all = upstreams;
    const byTier = new Map<number, Upstream[]>();
    for (const u of upstreams) {
      const tier = byTier.get(u.tier) ?? [];
      tier.push(u);
      byTier.set(u.tier, tier);
    }
    this.tiers = [...byTier.entries()].sort((a, b) => a[0] - b[0]).map(([, list]) => list);
  }

  get size(): number {
    return this.all.length;
  }

  /** The upstreams to try for `call`, best first. */
  plan(call: Plannable, now = Date.now()): Plan {
    const only = this.all.length === 1 ? (this.all[0] as Upstream) : undefined;
    if (only !== undefined) {
      // The one-upstream fast path: no ordering to do.
      const refusal = this.refusal(only, call);
      return refusal === undefined ? { candidates: this.all, refusal: undefined } : { candidates: [], refusal };
    }
    const spread = STATELESS.has(call.endpoint);
    const ready: Upstream[] = [];
    const resting: Upstream[] = [];
    let refusal: string | undefined;
    for (const tier of this.tiers) {
      const serving: Upstream[] = [];
      for (const u of tier) {
        const why = this.refusal(u, call);
        if (why !== undefined) {
          refusal ??= why;
          continue;
        }
        if (u.headroom.resting(now)) resting.push(u);
        else serving.push(u);
      }
      if (spread && serving.length > 1) this.shuffleByWeight(serving);
      ready.push(...serving);
    }
    resting.sort((a, b) => a.headroom.restLeftMs(now) - b.headroom.restLeftMs(now));
    const candidates = ready.concat(resting);
    return { candidates, refusal: candidates.length === 0 ? refusal : undefined };
  }

  private refusal(u: Upstream, call: Plannable): string | undefined {
    const why = u.adapter.refuses(call);
    if (why !== undefined) return why;
    if (u.modelFor(call.model) === null) return `model ${(call.model ?? '').slice(0, 100)} is not served by any configured upstream`;
    return undefined;
  }

  /** In place: a weighted random order (weight x headroom), heaviest most likely first. */
  private shuffleByWeight(list: Upstream[]): void {
    for (let i = 0; i < list.length - 1; i++) {
      let total = 0;
      for (let j = i; j < list.length; j++) total += (list[j] as Upstream).weight * (list[j] as Upstream).headroom.factor();
      let pick = this.random() * total;
      let chosen = list.length - 1;
      for (let j = i; j < list.length; j++) {
        pick -= (list[j] as Upstream).weight * (list[j] as Upstream).headroom.factor();
        if (pick < 0) {
          chosen = j;
          break;
        }
      }
      const tmp = list[i] as Upstream;
      list[i] = list[chosen] as Upstream;
      list[chosen] = tmp;
    }
  }

  /** Pools' occupancy summed over every upstream (metrics). */
  snapshot(): PoolSnapshot {
    const sum: PoolSnapshot = { capacity: 0, active: 0, queued: 0, connections: 0 };
    for (const u of this.all) {
      const s = u.client.snapshot();
      sum.capacity += s.capacity;
      sum.active += s.active;
      sum.queued += s.queued;
      sum.connections += s.connections;
    }
    return sum;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map(async (u) => {
      await u.client.close();
      await u.adapter.close?.();
    }));
  }
}
