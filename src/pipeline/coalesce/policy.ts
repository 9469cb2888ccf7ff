import type { IncomingMessage } from 'node:http';

/**
 * Which requests may share a flight: calls whose answer depends only on what the fingerprint
 * covers. Message creation and token counting (POST) and model reads (GET). Batches are excluded:
 * their answers are rewritten per requester and their mutations are not idempotent.
 */
export function isCoalescable(method: string, path: string): boolean {
  const bare = path.split('?', 1)[0] ?? path;
  if (method === 'POST') return bare === '/v1/messages' || bare === '/v1/messages/count_tokens';
  if (method === 'GET') return bare === '/v1/models' || bare.startsWith('/v1/models/');
  return false;
}

/** `x-gateway-coalesce: off` opts one request out. */
export function optedOut(req: IncomingMessage): boolean {
  const value = req.headers['x-gateway-coalesce'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'off';
}

/** `x-gateway-cache: off` keeps one request away from the response cache (read and write). */
export function cacheOptedOut(req: IncomingMessage): boolean {
  const value = req.headers['x-gateway-cache'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'off';
}

/** How a request was served: made the call, joined one, not eligible, or answered from the cache. */
export type CoalesceRole = 'leader' | 'follower' | 'bypass' | 'cache';

/** Response header telling the client how its request was served. */
export const ROLE_HEADER = 'x-gateway-coalesce-role';
