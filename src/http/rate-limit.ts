import { rateLimit, ipKeyGenerator, type Store } from 'express-rate-limit';
import type { RequestHandler } from 'express';
import type { Stage } from './stage.js';
import { GatewayError } from '../core/errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { contextOf } from './context.js';

export interface RateLimitOptions {
  /** Requests per minute per client identity; 0 turns limiting off. */
  rpm: number;
  metrics: GatewayMetrics;
  /** Where counts live: in-process by default, Redis when instances share limits. */
  store?: Store | undefined;
}

/**
 * Per-client limits with express-rate-limit. A client is its key's keyed hash (the `client` the
 * auth stage set), or its IP address when it sent none. Standard `RateLimit-*` headers on every
 * answer; refusals are Anthropic-shaped 429 `rate_limit_error` with `retry-after`. Runs after the
 * system routes, which are therefore never limited.
 */
export function rateLimiter(options: RateLimitOptions): Stage | undefined {
  if (options.rpm === 0) return undefined;
  // express-rate-limit is Express middleware; the gateway runs it on node's own req/res (see
  // stage.ts), which it only touches through headers and the callbacks below.
  const limiter: RequestHandler = rateLimit({
    // Keys come from the request context, never req.ip: its Express-only validations do not apply.
    validate: { ip: false, trustProxy: false, xForwardedForHeader: false },
    windowMs: 60_000,
    limit: options.rpm,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    ...(options.store === undefined ? {} : { store: options.store }),
    keyGenerator: (req) => {
      const client = contextOf(req).client;
      return client ?? `ip:${ipKeyGenerator(req.socket.remoteAddress ?? 'unknown')}`;
    },
    handler: (req, res, next, limitOptions) => {
      const ctx = contextOf(req);
      options.metrics.rateLimited.inc({ mode: options.metrics.modes.known(ctx.mode) });
      const reset = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + limitOptions.windowMs) - Date.now()) / 1000));
      next(new GatewayError('RATE_LIMITED', `Rate limit of ${options.rpm} requests per minute exceeded for this API key. Retry after ${retryAfter}s.`, {
        headers: { 'retry-after': String(retryAfter) },
      }));
    },
  });
  return limiter as unknown as Stage;
}
