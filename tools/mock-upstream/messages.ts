import { errorBody } from './error-body.js';
import { answerFor, countTokens, messageOf, validateCountTokens, validateMessages, type Answer, type MessagesRequest } from './answers.js';
import type { ApiCall } from './api-call.js';
import { breakpointProblem, promptBlocks } from './prompt-cache.js';
import { formatEvent, messageEvents, startUsage } from './sse.js';
import type { BilledUsage } from './stats.js';

/** POST /v1/messages (plain and SSE) and POST /v1/messages/count_tokens. */

/** Index of the event before which mid-stream faults strike: after message_start, content_block_start, ping and two deltas. */
const STRIKE_AT = 5;

/** The parsed JSON body, or undefined once a 400 has been sent. */
export function jsonBody(call: ApiCall): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(call.body) as unknown };
  } catch {
    call.reply.error(400, 'Request body is not valid JSON');
    return undefined;
  }
}

function billable(usage: BilledUsage): BilledUsage {
  const { input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens } = usage;
  return { input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens };
}

export async function createMessage(call: ApiCall): Promise<void> {
  const parsed = jsonBody(call);
  if (parsed === undefined) return;
  const problem = validateMessages(parsed.value);
  if (problem !== undefined) {
    call.reply.error(400, problem);
    return;
  }
  const req = parsed.value as MessagesRequest;
  const tooMany = breakpointProblem(promptBlocks(req));
  if (tooMany !== undefined) {
    call.reply.error(400, tooMany);
    return;
  }
  const answer = answerFor(req, call.state.promptCache, call.cacheScope);
  if (req.stream === true) {
    await streamAnswer(call, req.model, answer);
    return;
  }
  call.state.bill(req.model, billable(answer.usage));
  call.reply.json(200, messageOf(answer, req.model));
}

/**
 * Streams the answer event by event. Billing follows what was reported: the message_delta usage
 * once it was sent, else the message_start usage (a stream that failed or was abandoned earlier).
 */
async function streamAnswer(call: ApiCall, model: string, answer: Answer): Promise<void> {
  const events = messageEvents(answer, model);
  const strikeAt = Math.min(STRIKE_AT, events.findIndex((e) => e.name === 'message_delta'));
  const kind = call.fault.kind;
  const writer = call.reply.eventStream();
  if (kind === 'first-event-error') {
    // Nothing of the answer was produced, so nothing is billed.
    await writer.write(formatEvent({ name: 'error', data: errorBody(529, 'Overloaded') }));
    writer.end();
    return;
  }
  let billed = billable(startUsage(answer.usage));
  try {
    for (const [i, event] of events.entries()) {
      if (i > 0) {
        if (kind === 'stall-body') return; // message_start went out; nothing more until the client leaves or the mock closes
        await call.sleep(call.eventIntervalMs);
      }
      if (i === strikeAt && kind === 'midstream-error') {
        await writer.write(formatEvent({ name: 'error', data: errorBody(529, 'Overloaded') }));
        writer.end();
        return;
      }
      if (i === strikeAt && kind === 'midstream-reset') {
        writer.destroy();
        return;
      }
      if (!(await writer.write(formatEvent(event)))) return;
      if (event.name === 'message_delta') billed = billable(answer.usage);
    }
    writer.end();
  } finally {
    call.state.bill(model, billed);
  }
}

export function countMessageTokens(call: ApiCall): void {
  const parsed = jsonBody(call);
  if (parsed === undefined) return;
  const problem = validateCountTokens(parsed.value);
  if (problem !== undefined) {
    call.reply.error(400, problem);
    return;
  }
  call.reply.json(200, { input_tokens: countTokens(parsed.value as { system?: unknown; tools?: unknown; messages: unknown[] }) });
}
