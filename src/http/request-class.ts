import type { IncomingMessage } from 'node:http';
import { endpointLabel } from '../observability/labels.js';
import { cacheOptedOut, isCoalescable, optedOut } from '../pipeline/coalesce/policy.js';
import { hasBody, isJson } from './body.js';
import type { RequestContext } from './context.js';

/** What the classification reads of the configuration. */
export interface ClassifySettings {
  readonly basePath: string;
  /** COALESCE: identical calls in flight share one upstream call. */
  readonly coalesce: boolean;
  /** CACHE: a response cache exists. */
  readonly cache: boolean;
}

/**
 * Everything the edge decides about a request before any answer source is asked, from its line,
 * headers and tenant alone (nothing read, nothing awaited): which answers it may take and give.
 */
export interface RequestClass {
  readonly method: string;
  /** The path and query to forward (without BASE_PATH). */
  readonly path: string;
  /** The client reached the gateway under BASE_PATH (answers that name the gateway keep it). */
  readonly viaBasePath: boolean;
  /** The bounded endpoint label. */
  readonly endpoint: string;
  readonly withBody: boolean;
  /** The body is JSON: read whole (and scanned); otherwise it streams through untouched. */
  readonly jsonBody: boolean;
  /** May join an identical call in flight or a lingering answer, and lead one others join. */
  readonly coalescing: boolean;
  /** May be answered from the response cache, and its answer stored there. */
  readonly caching: boolean;
}

/** The path to forward: the client's path and query, without the gateway's own BASE_PATH. */
export function upstreamPath(url: string, basePath: string): { path: string; viaBasePath: boolean } {
  if (basePath !== '' && url.startsWith(basePath) && (url.length === basePath.length || '/?'.includes(url[basePath.length] as string))) {
    const rest = url.slice(basePath.length);
    return { path: rest === '' || rest.startsWith('?') ? '/' + rest : rest, viaBasePath: true };
  }
  return { path: url, viaBasePath: false };
}

/**
 * Pure: the same request, tenant and settings always classify the same way.
 * A streamed (non-JSON) body is consumed once: its call can never be shared or cached. A request
 * without an upstream credential (no tenant) shares nothing: not a flight, a lingering or a cached answer.
 */
export function classifyRequest(req: IncomingMessage, ctx: Pick<RequestContext, 'tenant'>, settings: ClassifySettings): RequestClass {
  const method = req.method ?? 'GET';
  const { path, viaBasePath } = upstreamPath(req.url ?? '/', settings.basePath);
  const withBody = hasBody(req);
  const jsonBody = withBody && isJson(req);
  const eligible = ctx.tenant !== undefined && (!withBody || jsonBody) && isCoalescable(method, path);
  return {
    method,
    path,
    viaBasePath,
    endpoint: endpointLabel(path),
    withBody,
    jsonBody,
    coalescing: eligible && settings.coalesce && !optedOut(req),
    caching: eligible && settings.cache && !cacheOptedOut(req),
  };
}
