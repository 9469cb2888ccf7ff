import type { ErrorStage } from './stage.js';
import { pathOf } from './stage.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { contextOf } from './context.js';

/**
 * The only place a GatewayError becomes an HTTP answer. Anything else is a bug: it is logged with
 * its stack and the client gets a generic Anthropic-shaped 500 (never the internal message).
 */
export function errorHandler(logger: Logger): ErrorStage {
  return (err, req, res) => {
    const known = err instanceof GatewayError ? err : undefined;
    const gatewayError = known ?? new GatewayError('INTERNAL', 'Internal gateway error', { cause: err });
    contextOf(req).errorCode = gatewayError.code;
    if (known === undefined) logger.error({ err, path: pathOf(req) }, 'unhandled error in request pipeline');
    if (res.headersSent) {
      // Nothing coherent can follow bytes already sent; cut the connection so the client sees a failure.
      res.destroy();
      return;
    }
    const body = JSON.stringify(gatewayError.toBody());
    res.statusCode = gatewayError.status;
    for (const [name, value] of Object.entries(gatewayError.headers)) res.setHeader(name, value);
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(body));
    if (gatewayError.code === 'BODY_TOO_LARGE') res.setHeader('connection', 'close');
    res.end(body);
  };
}
