import { GatewayError } from '../core/errors.js';

/**
 * Reads a whole answer body that is expected to be small (an error, a count, a batch object),
 * at most `limit` bytes. A longer one is the upstream's fault (coded UPSTREAM_RESPONSE_INVALID,
 * 502); leaving the loop early closes the body (for-await's return destroys a stream).
 */
export async function readWhole(body: AsyncIterable<Buffer> | Iterable<Buffer>, limit: number, who: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw new GatewayError('UPSTREAM_RESPONSE_INVALID', `${who} answer exceeded ${limit} bytes where a short JSON body was expected`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
