import type { Logger } from '../../observability/logger.js';
import { isAbort, translateUpstreamError } from '../../upstream/client.js';
import { observer, type OuterObserver } from './chain.js';

/**
 * One warning per call whose answer broke after its head (clients already got bytes and then an
 * SSE error event or a cut body). Failures before the head reach the client as errors and are
 * logged with its request line.
 */
export function reportBrokenAnswers(logger: Logger): OuterObserver {
  return observer((call, ctx) => {
    ctx.finally((outcome) => {
      if (outcome.head === undefined || outcome.error === undefined || isAbort(outcome.error) || outcome.abandoned) return;
      const err = translateUpstreamError(outcome.error, 'body');
      logger.warn({ code: err.code, path: call.path.split('?', 1)[0], subscribers: outcome.subscribers }, err.message);
    });
    return call;
  });
}
