import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { RequestLog } from '../observability/request-log.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { routeLabel } from '../observability/labels.js';
import { parseTraceparent, type RequestTracing } from '../observability/tracing.js';
import { attachContext, contextOf, modeOf } from './context.js';
import { pathOf, type Stage } from './stage.js';

const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The first stage: creates the request context, and when the response is over (finished or cut)
 * writes one log line and the HTTP metrics. Only whitelisted fields are logged: never headers,
 * bodies or query strings. The end is one listener for every response (`this` is the response;
 * what it needs is the request's: its context, method and path), not a closure per request.
 */
export function observeRequests(baseLogger: Logger, metrics: GatewayMetrics, tracing: RequestTracing): Stage {
  const log = new RequestLog(baseLogger);
  function ended(this: ServerResponse): void {
    const req: IncomingMessage = this.req;
    const ctx = contextOf(req);
    const startedAt = ctx.receivedAt;
    const span = ctx.span;
    const seconds = (performance.now() - startedAt) / 1000;
    const path = pathOf(req);
    const method = req.method ?? 'GET';
    const route = routeLabel(path);
    // A client that left before the answer ended has no meaningful status: 499, as nginx logs it.
    const status = this.writableFinished || this.headersSent ? String(this.statusCode) : '499';
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
    log.write(level, method, path, Number(status), Math.round(seconds * 100_000) / 100, this.writableFinished, ctx, span?.spanContext().traceId);
  }
  return (req, res, next) => {
    const startedAt = performance.now();
    const span = tracing.enabled ? tracing.startServer(req.method ?? 'GET', routeLabel(pathOf(req)), parseTraceparent(req.headers.traceparent)) : undefined;
    attachContext(req, modeOf(req), span, startedAt);
    metrics.httpActive++;
    // `on`, not `once`: a response closes once (no wrapper per request).
    res.on('close', ended);
    next();
  };
}
