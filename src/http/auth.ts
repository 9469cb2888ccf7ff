import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Stage } from './stage.js';
import { GatewayError } from '../errors.js';
import { contextOf } from './context.js';

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The Anthropic credential a client sent: `x-api-key` (SDK 0.x) or `Authorization: Bearer` (SDK 1.x). */
export function clientCredential(req: IncomingMessage): string | undefined {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') return auth.slice(7).trim();
  return undefined;
}

export interface AuthOptions {
  gatewayApiKeys: readonly string[] | undefined;
  /** When the gateway injects its own upstream key, the client's SDK key IS its gateway key. */
  injectsUpstreamKey: boolean;
}

/**
 * Sets the tenant identity and, when GATEWAY_API_KEYS is set, admits only clients presenting one.
 * Keys are compared by SHA-256 digest lookup, so the comparison time does not depend on how much
 * of a guessed key matches.
 */
export function authenticate(options: AuthOptions): Stage {
  const allowed = options.gatewayApiKeys ? new Set(options.gatewayApiKeys.map(sha256Hex)) : undefined;
  return (req, _res, next) => {
    const ctx = contextOf(req);
    if (allowed === undefined) {
      const credential = clientCredential(req);
      ctx.tenant = credential === undefined ? 'anonymous' : `key:${sha256Hex(credential).slice(0, 32)}`;
      next();
      return;
    }
    const header = req.headers['x-gateway-api-key'];
    const presented = typeof header === 'string' && header !== '' ? header : options.injectsUpstreamKey ? clientCredential(req) : undefined;
    const digest = presented === undefined ? undefined : sha256Hex(presented);
    if (digest === undefined || !allowed.has(digest)) {
      const hint = options.injectsUpstreamKey
        ? 'send a gateway API key as the SDK apiKey (x-api-key or Authorization: Bearer) or in x-gateway-api-key'
        : 'send a gateway API key in the x-gateway-api-key header';
      next(new GatewayError('UNAUTHENTICATED', 401, `Missing or invalid gateway API key: ${hint}`));
      return;
    }
    ctx.tenant = `gw:${digest.slice(0, 32)}`;
    next();
  };
}
