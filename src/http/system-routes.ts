import type { IncomingMessage, ServerResponse } from 'node:http';
import { anthropicErrorBody, errorTypeForStatus } from '../core/errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { ClusterScrapeUnavailable } from '../observability/cluster-metrics.js';

export interface Readiness {
  readonly draining: boolean;
}

export const SYSTEM_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** Answers one system request; `path` is the request's path without its query, one of SYSTEM_PATHS. */
export type SystemRoutes = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/** A JSON answer with its length (a HEAD request gets the same head and no body: node drops it). */
function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Liveness, readiness, metrics: answered by the gateway itself, never proxied, authenticated or
 * limited. GET (and HEAD, its head only) is served; any other method gets an Anthropic-shaped 405
 * with `allow: GET`. Plain node:http: these three answers needed no web framework (Express, which
 * served them before, held about 2 MB of heap for them).
 */
export function systemRoutes(readiness: Readiness, metrics: GatewayMetrics): SystemRoutes {
  const renderMetrics = async (res: ServerResponse): Promise<void> => {
    try {
      const text = await metrics.render();
      res.setHeader('content-type', metrics.registry.contentType);
      res.end(text);
    } catch (err) {
      // A worker that did not answer in time (WORKERS > 1): a failed scrape, not a partial sum.
      const status = err instanceof ClusterScrapeUnavailable ? 503 : 500;
      json(res, status, { type: 'error', error: { type: errorTypeForStatus(status), message: `metrics collection failed: ${err instanceof Error ? err.message : 'unknown'}` } });
    }
  };
  return (req, res, path) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET');
      json(res, 405, anthropicErrorBody(405, `Method ${req.method ?? ''} not allowed on ${path}`));
    } else if (path === '/healthz') json(res, 200, { status: 'ok' });
    else if (path === '/readyz') json(res, readiness.draining ? 503 : 200, { status: readiness.draining ? 'draining' : 'ready' });
    else void renderMetrics(res);
  };
}
