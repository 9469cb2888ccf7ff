import type { Logger } from '../observability/logger.js';
import { RequestLog } from '../observability/request-log.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { routeLabel } from '../observability/labels.js';
import { parseTraceparent, type RequestTracing } from '../observability/tracing.js';
import { attachContext, modeOf } from './context.js';
import { pathOf, type Stage } from './stage.js';

const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The first stage: creates the request context, and when the response is over (finished or cut)
 * writes one log line and the HTTP metrics. Only whitelisted fields are logged: never headers,
 * bodies or query strings.
 */
export function observeRequests(baseLogger: Logger, metrics: GatewayMetrics, tracing: RequestTracing): Stage {
  const log = new RequestLog(baseLogger);
  return (req, res, next) => {
    const startedAt = performance.now();
    const path = pathOf(req);
    const method = req.method ?? 'GET';
    const route = routeLabel(path);
    const span = tracing.enabled ? tracing.startServer(method, route, parseTraceparent(req.headers.traceparent)) : undefined;
    const ctx = attachContext(req, modeOf(req), span, startedAt);
    metrics.httpActive++;
    res.once('close', () => {
      const seconds = (performance.now() - startedAt) / 1000;
      // A client that left before the answer ended has no meaningful status: 499, as nginx logs it.
      const status = res.writableFinished || res.headersSent ? String(res.statusCode) : '499';
      metrics.httpActive--;
      const series = metrics.requestSeries(method, route, status);
      series.requests.inc();
      series.duration.observe(seconds);
      if (span !== undefined) {
        span.setAttribute('http.response.status_code', Number(status));
        span.setAttribute('claude_gateway.mode', ctx.mode);
        if (ctx.role !== undefined) span.setAttribute('claude_gateway.coalesce.role', ctx.role);
        if (ctx.errorCode !== undefined) span.setAttribute('error.type', ctx.errorCode);
        span.end();
      }
      const level = QUIET_ROUTES.has(route) ? 'debug' : 'info';
      if (!log.enabled(level)) return;
      log.write(level, method, path, Number(status), Math.round(seconds * 100_000) / 100, res.writableFinished, ctx, span?.spanContext().traceId);
    });
    next();
  };
}
