import { Router } from 'express';

export interface Readiness {
  readonly draining: boolean;
}

/** Liveness, readiness: answered by the gateway itself, never proxied, never authenticated. */
export function systemRoutes(readiness: Readiness): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    if (readiness.draining) res.status(503).json({ status: 'draining' });
    else res.json({ status: 'ready' });
  });
  return router;
}
