import type { Readable } from 'node:stream';
import type { UpstreamClient } from '../../upstream/client.js';
import { forwardResponseHeaders, headerValue } from '../../upstream/headers.js';
import type { Dispatch } from './chain.js';

/**
 * The innermost dispatch: one upstream request over the pooled undici client. Its deadlines are
 * undici's (connect, headers, body idle) plus the flight's signal. Records when the request was
 * sent and when its headers arrived: the clocks of `claude_api_duration_seconds`, TTFT and
 * `gateway_overhead_seconds` start here, not before the gateway's own work.
 */
export function transport(client: UpstreamClient): Dispatch {
  return async (call, ctx) => {
    ctx.facts.sentAt = performance.now();
    const answer = await client.send({ method: call.method, path: call.path, headers: call.headers as string[], body: call.body, signal: ctx.signal });
    ctx.facts.headersAt = performance.now();
    return {
      head: {
        status: answer.status,
        headers: forwardResponseHeaders(answer.headers, answer.decoded),
        eventStream: headerValue(answer.headers, 'content-type')?.startsWith('text/event-stream') === true,
      },
      body: answer.body as Readable & AsyncIterable<Buffer>,
    };
  };
}
