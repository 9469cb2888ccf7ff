import { translateUpstreamError } from '../../upstream/client.js';
import type { Interceptor } from './chain.js';

/** Answers to rewrite are small JSON objects; a larger one is refused rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;

async function readBounded(body: AsyncIterable<Buffer> | Iterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw new Error(`answer exceeds the ${limit}-byte rewrite limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Rewrites a successful JSON answer before anyone sees it, for calls that ask (`call.rewriteJson`:
 * batch `results_url`). The answer is buffered (bounded), rewritten and re-framed.
 */
export function rewrite(): Interceptor {
  return (next) => async (call, ctx) => {
    const answer = await next(call, ctx);
    const edit = call.rewriteJson;
    if (edit === undefined || answer.head.status >= 300) return answer;
    const type = answer.head.headers.find(([name]) => name === 'content-type')?.[1];
    if (typeof type !== 'string' || !type.includes('json')) return answer;
    let bytes: Buffer;
    try {
      bytes = await readBounded(answer.body, MAX_REWRITE_BYTES);
    } catch (err) {
      throw translateUpstreamError(err, 'body');
    }
    const out = (call.upstream === undefined ? undefined : edit(bytes, call.upstream.baseUrl)) ?? bytes;
    const headers = answer.head.headers.filter(([name]) => name !== 'content-length' && name !== 'content-encoding');
    return { head: { ...answer.head, headers: [...headers, ['content-length', String(out.length)]] }, body: [out] };
  };
}
