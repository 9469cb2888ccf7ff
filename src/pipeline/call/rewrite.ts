import { translateUpstreamError } from '../../upstream/client.js';
import { pairValue } from '../../upstream/header-list.js';
import { readWhole } from '../../upstream/read-whole.js';
import type { Interceptor } from './chain.js';

/** Answers to rewrite are small JSON objects; a larger one is refused rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;

/**
 * Rewrites a successful JSON answer before anyone sees it, for calls that ask (`call.rewriteJson`:
 * batch `results_url`). The answer is buffered (bounded), rewritten and re-framed.
 */
export function rewrite(): Interceptor {
  return (next) => async (call, ctx) => {
    const answer = await next(call, ctx);
    const edit = call.rewriteJson;
    if (edit === undefined || answer.head.status >= 300) return answer;
    const type = pairValue(answer.head.headers, 'content-type');
    if (type?.includes('json') !== true) return answer;
    let bytes: Buffer;
    try {
      bytes = await readWhole(answer.body, MAX_REWRITE_BYTES, 'Upstream');
    } catch (err) {
      throw translateUpstreamError(err, 'body');
    }
    const out = (call.upstream === undefined ? undefined : edit(bytes, call.upstream.baseUrl)) ?? bytes;
    const headers = answer.head.headers.filter(([name]) => name !== 'content-length' && name !== 'content-encoding');
    return { head: { ...answer.head, headers: [...headers, ['content-length', String(out.length)]] }, body: [out] };
  };
}
