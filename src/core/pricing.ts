import type { TokenUsage } from './token-usage.js';

/**
 * The one declaration of a price: USD per million tokens (each a number >= 0), by token type.
 * PRICING_JSON (config.ts) and an upstream's `pricing` (upstream/targets.ts) are read against it.
 */
export const PRICE_FIELDS = ['input', 'output', 'cache_creation', 'cache_read'] as const;

export type Price = Record<(typeof PRICE_FIELDS)[number], number>;

/**
 * Estimated list prices by model family (USD per million tokens; cache writes at 1.25x input for
 * the 5-minute TTL, cache reads at 0.1x input). An ESTIMATE: the bill is authoritative. Exact
 * model ids or family names can be overridden with PRICING_JSON.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  opus: { input: 5, output: 25, cache_creation: 6.25, cache_read: 0.5 },
  sonnet: { input: 3, output: 15, cache_creation: 3.75, cache_read: 0.3 },
  haiku: { input: 1, output: 5, cache_creation: 1.25, cache_read: 0.1 },
};

/** Model ids remembered with the family price they resolved to; past this the memo is cleared (bounded: ids come from clients). */
const MAX_RESOLVED = 1_000;

export class PriceTable {
  private readonly prices: Record<string, Price>;
  /** The table's names, in order (a model id takes the first family it contains). */
  private readonly families: readonly string[];
  /** Model ids not in the table by name, with the family price found (null: none). */
  private readonly resolved = new Map<string, Price | null>();
  constructor(overrides: Record<string, Price> = {}) {
    this.prices = { ...DEFAULT_PRICES, ...overrides };
    this.families = Object.keys(this.prices);
  }

  /** Whether `model` is priced by its exact id (PRICING_JSON), not only by a family it contains. */
  hasExact(model: string): boolean {
    return Object.hasOwn(this.prices, model) && !Object.hasOwn(DEFAULT_PRICES, model);
  }

  /** Exact model id first, then the first family name the id contains. */
  /**
   * The price of `model`: by its exact id, else the first family its id contains. Only the table's
   * own names count: an id such as `constructor` or `toString` is not a price (a client names the
   * model; an inherited property read as a price made the cost NaN, and NaN fits every budget).
   * Called per call (budgets, metrics): a family look-up is remembered per id.
   */
  priceOf(model: string): Price | undefined {
    if (Object.hasOwn(this.prices, model)) return this.prices[model];
    const known = this.resolved.get(model);
    if (known !== undefined) return known ?? undefined;
    let found: Price | undefined;
    for (const family of this.families) {
      if (model.includes(family)) {
        found = this.prices[family];
        break;
      }
    }
    if (this.resolved.size >= MAX_RESOLVED) this.resolved.clear();
    this.resolved.set(model, found ?? null);
    return found;
  }

  /** Every price the table holds (defaults and overrides). */
  all(): Price[] {
    return Object.values(this.prices);
  }

  costUsd(model: string, usage: TokenUsage): number {
    const p = this.priceOf(model);
    if (p === undefined) return 0;
    return (usage.input * p.input + usage.output * p.output + usage.cache_creation * p.cache_creation + usage.cache_read * p.cache_read) / 1_000_000;
  }

  /** What reading `cacheRead` tokens from the prompt cache saved against sending them as input (list prices). */
  cacheSavingsUsd(model: string, cacheRead: number): number {
    const p = this.priceOf(model);
    if (p === undefined || cacheRead <= 0) return 0;
    return Math.max(0, (cacheRead * (p.input - p.cache_read)) / 1_000_000);
  }
}
