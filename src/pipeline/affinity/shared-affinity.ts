/**
 * The port through which instances share the cache-affinity table (REDIS_URL). `pipeline/` owns
 * it; `coordination/` implements it on Redis. Nothing in `pipeline/` imports `coordination/`.
 *
 * Contract:
 * - `get` never throws and resolves within its own deadline (a slow or lost Redis cannot stall a
 *   call): any trouble answers undefined, and the local table decides.
 * - `set` is fire-and-forget: it never throws, and a lost write only costs a later miss.
 * - Keys are digests (no secret, no prompt text); values are upstream names; entries expire after
 *   `ttlMs` at the store.
 */
export interface SharedAffinity {
  get(key: string): Promise<string | undefined>;
  set(key: string, upstream: string, ttlMs: number): void;
}
