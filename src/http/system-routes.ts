import { Router } from 'express';
import type { GatewayMetrics } from '../observability/metrics.js';

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
      res.status(500).json({ type: 'error', error: { type: 'api_error', message: `metrics collection failed: ${err instanceof Error ? err.message : 'unknown'}` } });
    }
  });
  return router;
}
