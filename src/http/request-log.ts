import type { RequestHandler } from 'express';
import type { Logger } from '../observability/logger.js';
import { attachContext } from './context.js';

const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per request, written when the response is over (finished or cut). Only whitelisted
 * fields are logged: never headers, bodies or query strings.
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const startedAt = performance.now();
    const ctx = attachContext(req, startedAt);
    res.once('close', () => {
      const quiet = QUIET_PATHS.has(req.path);
      if (quiet && !logger.isLevelEnabled('debug')) return;
      const line = {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
        completed: res.writableFinished,
        mode: ctx.mode,
        tenant: ctx.tenant,
        upstreamRequestId: ctx.upstreamRequestId,
        code: ctx.errorCode,
      };
      if (quiet) logger.debug(line, 'request');
      else logger.info(line, 'request');
    });
    next();
  };
}
