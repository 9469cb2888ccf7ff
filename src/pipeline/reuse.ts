import type { CallOutcome } from './coalesce/flight.js';
import type { CallFacts } from './call/facts.js';

/**
 * The one verdict on whether an answer may be served again to anyone who was not on its flight: a
 * lingering answer (COALESCE_LINGER_MS), a response-cache entry (local or on Redis), and the
 * `whole` mark of the end entry another instance's followers read (which is what they decide by in
 * turn, through `facts.framed`). Every reuse derives from this function and nothing else.
 *
 * Whole means all of:
 * - a 2xx answer whose body was received to its end: no transport error, not abandoned;
 * - its end marked by its framing (`facts.framed`): a content-length reached, a chunked body's
 *   terminating chunk, an HTTP/2 stream's end; for a relayed answer, the leading instance's own
 *   verdict. A body delimited only by the closing connection is never whole: a cut looks the same;
 * - a stream (text/event-stream, including Bedrock's event stream as translated) whose last event
 *   is a complete `message_stop`, with no `error` event.
 *
 * Anything else reaches the clients that were on the flight, as it came, and nobody after them.
 * Read only once the call's outcome is known and the meter finished (the meter's own `finally`
 * hook runs before every hook registered inside it, and the edge reads it after the flight).
 */
export function isWholeAnswer(outcome: CallOutcome, facts: CallFacts): boolean {
  const head = outcome.head;
  if (head === undefined || !outcome.complete || outcome.error !== undefined || outcome.abandoned) return false;
  if (head.status < 200 || head.status >= 300 || facts.framed !== true) return false;
  const meter = facts.meter;
  if (meter?.streamErrorType !== undefined) return false;
  return !head.eventStream || meter?.streamStopped === true;
}
