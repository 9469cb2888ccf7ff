import { PriceTable, type Price } from '../core/pricing.js';
import type { TokenUsage } from '../core/token-usage.js';

/**
 * A call's worst-case cost before it runs (issue 26: budgets reserve it, then settle to the bill).
 *
 * Input tokens, from the body bytes the edge already read (nothing is tokenized):
 *   ceil(bytes / 2) + 1,600 per `"image"` the body names.
 * - Text: Claude's tokenizer averages 3.5 to 4 bytes per token on English and code; dense scripts
 *   (CJK: 3 UTF-8 bytes per character, at most about one token each) stay under bytes / 2 as well,
 *   and the JSON around the text (keys, quotes, escapes) only adds bytes. Only contrived input made
 *   of single-byte tokens ("1 1 1 ...") can exceed it; the settle then charges the real bill.
 * - Images: an image costs (width x height) / 750 tokens after the API resizes it to at most about
 *   1.15 megapixels, so at most about 1,600 tokens, whatever its bytes: a small file of a large
 *   picture would beat the bytes rule, so every `"image"` adds that upper bound (its base64 bytes
 *   are counted by the bytes rule too: conservative).
 * - Documents (PDF) count by the bytes rule: each page's text and image are smaller than the bytes
 *   the page takes in base64 for the documents the API accepts; an estimate, settled to the bill.
 * Output tokens: the body's `max_tokens` (the API never bills more). Missing or not a number: 0
 * output (the API refuses such a request, which costs nothing).
 *
 * Prices: every input token at the highest of input, cache-write and cache-read prices (a prompt may
 * be written to the cache whole), output at the output price, of the most expensive table that
 * prices the model (the gateway's PRICING_JSON table and each upstream's own `pricing`, since the
 * route picks the upstream only later). A model no table prices is charged at the highest price any
 * table knows, per token type: the safe choice (refusing would block new model ids until a price
 * is configured; pricing them at 0 would let them spend without limit). The same rule prices the
 * bill at settle time (`billedMicroUsd`), so an unknown model can never be free.
 *
 * Only `messages` calls are billed by tokens; every other endpoint reserves nothing (count_tokens,
 * models and files are free; batches bill later, when the batch runs: not reserved here).
 */

export interface CallCost {
  /** Micro-dollars (integer, rounded up). */
  readonly microUsd: number;
  readonly tokens: number;
}

export const ZERO_COST: CallCost = Object.freeze({ microUsd: 0, tokens: 0 });

/** Input tokens counted for each image the body names (about 1.15 megapixels / 750). */
export const IMAGE_TOKENS = 1_600;
/** Body bytes counted as one input token. */
export const BYTES_PER_TOKEN = 2;

const IMAGE_NEEDLE = Buffer.from('"image"');

/** Occurrences of `"image"` in the body: content blocks of type image (and, conservatively, any other such string). */
function imageCount(body: Buffer): number {
  let n = 0;
  let at = body.indexOf(IMAGE_NEEDLE);
  while (at !== -1) {
    n++;
    at = body.indexOf(IMAGE_NEEDLE, at + IMAGE_NEEDLE.length);
  }
  return n;
}

/** The rule above: an upper estimate of the input tokens of a JSON body of this size. */
export function estimateInputTokens(body: Buffer): number {
  return Math.ceil(body.length / BYTES_PER_TOKEN) + IMAGE_TOKENS * imageCount(body);
}

const MAX_TOKENS_KEY = Buffer.from('"max_tokens"');

/**
 * The largest integer value of any `"max_tokens"` key in the body (the top-level one is the request's;
 * a nested one, e.g. in a tool's schema, can only make the worst case larger: conservative); 0 when
 * there is none. A located key, not a parse: an unescaped `"max_tokens"` can only be a key or a
 * string value (inside a string, quotes are escaped), and a string value is not followed by a colon.
 */
export function maxTokensOf(body: Buffer): number {
  let best = 0;
  let at = body.indexOf(MAX_TOKENS_KEY);
  while (at !== -1) {
    let i = at + MAX_TOKENS_KEY.length;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
    if (body[i] === 0x3a) {
      i++;
      while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
      let n = 0;
      let digits = 0;
      while (i < body.length && digits < 16 && (body[i] as number) >= 0x30 && (body[i] as number) <= 0x39) {
        n = n * 10 + ((body[i] as number) - 0x30);
        digits++;
        i++;
      }
      // Digits followed by a fraction or exponent are not an integer: not a max_tokens the API accepts.
      const next = body[i];
      if (digits > 0 && digits < 16 && next !== 0x2e && next !== 0x65 && next !== 0x45) best = Math.max(best, n);
    }
    at = body.indexOf(MAX_TOKENS_KEY, at + MAX_TOKENS_KEY.length);
  }
  return best;
}

function highest(prices: readonly Price[]): Price {
  let input = 0;
  let output = 0;
  let cacheCreation = 0;
  let cacheRead = 0;
  for (const p of prices) {
    input = Math.max(input, p.input);
    output = Math.max(output, p.output);
    cacheCreation = Math.max(cacheCreation, p.cache_creation);
    cacheRead = Math.max(cacheRead, p.cache_read);
  }
  return { input, output, cache_creation: cacheCreation, cache_read: cacheRead };
}

/** Models remembered with their worst price; past this the memo is cleared (bounded). */
const MAX_MEMO = 1_000;

export class CostEstimator {
  private readonly tables: readonly PriceTable[];
  private readonly unknownPrice: Price;
  private readonly memo = new Map<string, Price>();
  private readonly perUpstream: ReadonlyMap<string, PriceTable>;
  private readonly base: PriceTable;

  /**
   * `base`: the gateway's table (defaults + PRICING_JSON); `perUpstream`: upstreams' own tables.
   * `knownPrices`: every price any table holds (for the unknown-model rule).
   */
  constructor(base: PriceTable, perUpstream: ReadonlyMap<string, PriceTable>, knownPrices: readonly Price[]) {
    this.tables = [base, ...perUpstream.values()];
    this.perUpstream = perUpstream;
    this.base = base;
    this.unknownPrice = highest(knownPrices);
  }

  /** The highest price of `model` across the tables, per token type; the highest known price when none prices it. */
  worstPriceOf(model: string | undefined): Price {
    if (model === undefined) return this.unknownPrice;
    const known = this.memo.get(model);
    if (known !== undefined) return known;
    const found: Price[] = [];
    for (const table of this.tables) {
      const p = table.priceOf(model);
      if (p !== undefined) found.push(p);
    }
    const price = found.length === 0 ? this.unknownPrice : highest(found);
    if (this.memo.size >= MAX_MEMO) this.memo.clear();
    this.memo.set(model, price);
    return price;
  }

  /** The worst case of a call before it runs (see the module comment); ZERO_COST for endpoints not billed by tokens. */
  worstCase(endpoint: string, model: string | undefined, body: Buffer | null): CallCost {
    if (endpoint !== 'messages' || body === null) return ZERO_COST;
    const input = estimateInputTokens(body);
    const output = maxTokensOf(body);
    const p = this.worstPriceOf(model);
    const inputPrice = Math.max(p.input, p.cache_creation, p.cache_read);
    return { microUsd: Math.ceil(input * inputPrice + output * p.output), tokens: input + output };
  }

  /**
   * What a call's usage costs, in micro-dollars: the answering upstream's table (else the gateway's),
   * as metrics price it; a model no table prices at the highest known price (never free).
   */
  billedMicroUsd(model: string | undefined, upstream: string | undefined, usage: TokenUsage): number {
    const table = (upstream === undefined ? undefined : this.perUpstream.get(upstream)) ?? this.base;
    const p = (model === undefined ? undefined : table.priceOf(model)) ?? this.unknownPrice;
    // USD per million tokens x tokens = micro-dollars.
    return Math.ceil(usage.input * p.input + usage.output * p.output + usage.cache_creation * p.cache_creation + usage.cache_read * p.cache_read);
  }
}

/** Tokens a usage counts against a token budget: every type. */
export function usageTokens(usage: TokenUsage): number {
  return usage.input + usage.output + usage.cache_creation + usage.cache_read;
}

/** The estimator over the gateway's tables: every price they hold (defaults, PRICING_JSON, upstreams' own) counts for unknown models. */
export function costEstimator(overrides: Record<string, Price>, upstreamPricing: ReadonlyMap<string, Record<string, Price>>): CostEstimator {
  const base = new PriceTable(overrides);
  const perUpstream = new Map([...upstreamPricing].map(([name, pricing]) => [name, new PriceTable({ ...overrides, ...pricing })] as const));
  const known: Price[] = [];
  for (const table of [base, ...perUpstream.values()]) known.push(...table.all());
  return new CostEstimator(base, perUpstream, known);
}
