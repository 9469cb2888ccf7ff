import { Router } from 'express';
import { errorTypeForStatus } from '../core/errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { ClusterScrapeUnavailable } from '../observability/cluster-metrics.js';

export interface Readiness {
  readonly draining: boolean;
}

export const SYSTEM_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** Liveness, readiness, metrics: answered by the gateway itself, never proxied, authenticated or limited. */
export function systemRoutes(readiness: Readiness, metrics: GatewayMetrics): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    if (readiness.draining) res.status(503).json({ status: 'draining' });
    else res.json({ status: 'ready' });
  });
  router.get('/metrics', async (_req, res) => {
    try {
      const text = await metrics.render();
      res.setHeader('content-type', metrics.registry.contentType);
      res.end(text);
    } catch (err) {
      // A worker that did not answer in time (WORKERS > 1): a failed scrape, not a partial sum.
      const status = err instanceof ClusterScrapeUnavailable ? 503 : 500;
      res.status(status).json({ type: 'error', error: { type: errorTypeForStatus(status), message: `metrics collection failed: ${err instanceof Error ? err.message : 'unknown'}` } });
    }
  });
  return router;
}
