import type { FlightHead } from '../pipeline/coalesce/flight.js';
import { answerValue } from '../upstream/header-list.js';
import type { RequestContext } from './context.js';

/** The upstream's `request-id` of the answer a client got, for its log line. */
export function noteRequestId(head: FlightHead | undefined, ctx: RequestContext): void {
  const requestId = head === undefined ? undefined : answerValue(head.headers, 'request-id');
  if (requestId !== undefined) ctx.upstreamRequestId = requestId;
}
