import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AffinityKey } from '../pipeline/affinity/cache-affinity.js';
import type { GovernedRequest } from '../governance/govern.js';
import type { RequestContext } from './context.js';
import type { RequestClass } from './request-class.js';
import type { Next } from './stage.js';
import type { CacheBreak } from '../observability/cache-breaks.js';

/** One request at the proxy stage once classified and its body read: what every answer source is given. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly ctx: RequestContext;
  readonly request: RequestClass;
  /** The JSON body read whole, the request itself for a body that streams through, or null. */
  readonly body: Buffer | IncomingMessage | null;
  /** The raw model string of a JSON body (a model id: http/body.ts); accounting and the breaker bound it themselves. */
  readonly model: string | undefined;
  /** The request's fingerprint; '' when it may share nothing (neither coalescing nor caching). */
  readonly key: string;
  /** The cached prompt head's identity (tenant, model, tools and system with a breakpoint) for cache-affinity routing; undefined when off or absent. */
  readonly affinity: AffinityKey | undefined;
  /** What governance sees of the request (http/governance.ts), when it applies. */
  governed?: GovernedRequest | undefined;
  /** The prompt-cache break this request's answer reports on (observability/cache-breaks.ts), if any. */
  readonly cacheBreak: CacheBreak | undefined;
  /** Where an error goes once the proxy stage has returned: the stage chain's `next`. */
  readonly next: Next;
}

/**
 * Answers the request and says true, or declines with false (nothing written, nothing counted but
 * its own lookup). Synchronous when it declines without waiting, so asking costs no promise.
 */
export type AnswerSource = (exchange: Exchange) => boolean | Promise<boolean>;
