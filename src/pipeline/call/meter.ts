import type { GatewayMetrics } from '../../observability/metrics.js';
import { UsageMeter } from '../../upstream/usage.js';
import { GatewayError } from '../../core/errors.js';
import { SseEventTooLarge } from '../../upstream/sse.js';
import { recordCall } from '../accounting.js';
import { answerValue } from '../../upstream/header-list.js';
import { observer, type OuterObserver } from './chain.js';

/**
 * The usage meter, outermost: it reads usage, model and stream errors from every answer body as the
 * bytes pass (local or relayed from another instance), and at the end hands the call to accounting.
 * One stream event larger than `maxEventBytes` fails the body (clients get a final SSE error event):
 * a misbehaving upstream cannot grow the gateway's memory. An observer: it meets the answer through
 * the scope's hooks (the head, the bytes, the end), never by awaiting it.
 */
export function meter(metrics: GatewayMetrics, maxEventBytes: number): OuterObserver {
  return observer((call, ctx) => {
    ctx.finally((outcome) => recordCall(metrics, call, ctx.facts, outcome));
    ctx.onHead((head) => {
      const type = answerValue(head.headers, 'content-type');
      const usage = new UsageMeter(head.eventStream, type?.includes('json') === true, maxEventBytes);
      ctx.facts.meter = usage;
      // Registered once the head is known, after every inner interceptor's hook, so it runs before them: all read a finished meter.
      ctx.finally(() => usage.finish());
      ctx.observe((chunk) => {
        try {
          usage.push(chunk);
        } catch (err) {
          if (!(err instanceof SseEventTooLarge)) throw err;
          throw new GatewayError('UPSTREAM_RESPONSE_INVALID', `Upstream sent a stream event larger than ${maxEventBytes} bytes (MAX_SSE_EVENT_BYTES)`, { cause: err });
        }
      });
    });
    return call;
  });
}
