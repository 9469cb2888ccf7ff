import { translateUpstreamError } from '../../upstream/client.js';
import { answerHeadersWithout, answerValue } from '../../upstream/header-list.js';
import { readWhole } from '../../upstream/read-whole.js';
import type { FlightSource } from '../coalesce/flight.js';
import type { CallContext, Dispatch, InnerInterceptor, RoutedCall } from './chain.js';

/** Answers to rewrite are small JSON objects; a larger one is refused rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;
/** The framing headers a rewritten body replaces. */
const REFRAMED: ReadonlySet<string> = new Set(['content-length', 'content-encoding']);

/**
 * Rewrites a successful JSON answer before anyone sees it, for calls that ask (`call.rewriteJson`:
 * batch `results_url`). The answer is buffered (bounded), rewritten and re-framed. Calls that do
 * not ask pass straight through (no promise of their own).
 */
export function rewrite(): InnerInterceptor {
  return (next) => (call, ctx) => {
    const edit = call.rewriteJson;
    return edit === undefined ? next(call, ctx) : rewritten(next, call, ctx, edit);
  };
}

async function rewritten(next: Dispatch<RoutedCall>, call: RoutedCall, ctx: CallContext, edit: NonNullable<RoutedCall['rewriteJson']>): Promise<FlightSource> {
  const answer = await next(call, ctx);
  if (answer.head.status >= 300) return answer;
  const type = answerValue(answer.head.headers, 'content-type');
  if (type?.includes('json') !== true) return answer;
  let bytes: Buffer;
  try {
    bytes = await readWhole(answer.body, MAX_REWRITE_BYTES, 'Upstream');
  } catch (err) {
    throw translateUpstreamError(err, 'body');
  }
  const out = edit(bytes, call.upstream.baseUrl) ?? bytes;
  const headers = answerHeadersWithout(answer.head.headers, REFRAMED);
  headers.push('content-length', String(out.length));
  return { head: { ...answer.head, headers }, body: [out] };
}
