import type { PromptCache } from './prompt-cache.js';
import type { BatchStore } from './batches.js';
import type { FaultPlan } from './faults.js';
import type { Reply } from './reply.js';
import type { BilledUsage } from './stats.js';

/**
 * What a route handler is given: the request, its reply and the mock's state. Its own module so
 * handlers (messages.ts) and the route table (routes.ts) both depend on it and not on each other.
 */

export interface MockState {
  readonly promptCache: PromptCache;
  readonly batches: BatchStore;
  /** Base of the absolute URLs the mock hands out, without a trailing slash. */
  publicUrl: string;
  bill(model: string, usage: BilledUsage): void;
}

/** One authenticated API request on its way to a handler. */
export interface ApiCall {
  readonly method: string;
  readonly url: URL;
  readonly body: string;
  readonly reply: Reply;
  readonly fault: FaultPlan;
  readonly eventIntervalMs: number;
  readonly state: MockState;
  /** Whose prompt cache the call reads and writes: its API key, or the Bedrock account and region, or the Vertex project and region. */
  readonly cacheScope: string;
  /** Waits `ms`; returns at once when the mock closes. */
  sleep(ms: number): Promise<void>;
}
