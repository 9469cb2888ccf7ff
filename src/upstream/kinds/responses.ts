import { Readable } from 'node:stream';
import { GatewayError } from '../../core/errors.js';
import { isAbort, translateUpstreamError } from '../client.js';
import { readWhole } from '../read-whole.js';
import { headerValue, type UpstreamHeaders } from '../headers.js';
import type { ProviderResponse } from './kind.js';

/** Building blocks for translated answers: bounded body reads and the headers a rewritten body needs. */

/** Largest provider answer read whole to be rewritten (errors, count_tokens): they are small. */
export const MAX_REWRITTEN_BODY = 1024 * 1024;

/** Headers that described the provider's bytes, not the ones the client will get. */
const FRAMING = new Set(['content-length', 'content-encoding', 'content-type', 'transfer-encoding']);

/**
 * The provider's headers for a body the gateway rewrote: framing dropped, the new content type set,
 * Anthropic's `request-id` taken from the provider's request id when it has none, `extra` on top.
 */
export function rewrittenHeaders(headers: UpstreamHeaders, contentType: string, providerRequestId: string | undefined, extra: Record<string, string> = {}): UpstreamHeaders {
  const out: UpstreamHeaders = {};
  for (const name in headers) {
    if (!FRAMING.has(name)) out[name] = headers[name];
  }
  out['content-type'] = contentType;
  if (headerValue(headers, 'request-id') === undefined && providerRequestId !== undefined) out['request-id'] = providerRequestId;
  return { ...out, ...extra };
}

/**
 * An answer whose body is produced from the provider's whole (small) body. The body is read and
 * rewritten BEFORE the answer's head is handed on: whatever goes wrong (a body over
 * MAX_REWRITTEN_BODY, a connection lost mid-body, a body `rewrite` refuses) rejects with a coded
 * GatewayError while no byte of the head was written, so the client gets an error answer with
 * a status line rather than a reset socket. `rewrite` throws a GatewayError to refuse a body.
 */
export async function rewrittenAnswer(res: ProviderResponse, status: number, headers: UpstreamHeaders, rewrite: (whole: Buffer) => Buffer, kind: string): Promise<ProviderResponse> {
  let whole: Buffer;
  try {
    whole = await readWhole(res.body, MAX_REWRITTEN_BODY, kind);
  } catch (err) {
    release(res.body);
    // The call's own stop (every client left) stays an abort: nobody's failure, never the upstream's.
    throw isAbort(err) ? err : translateUpstreamError(err, 'body');
  }
  const out = rewrite(whole);
  return { status, headers: { ...headers, 'content-length': String(out.length) }, body: Readable.from([out], { objectMode: false }), decoded: false };
}

/** Refuses a provider answer the gateway cannot translate, before its head: the provider's body is released. */
export function invalidAnswer(res: ProviderResponse, message: string): never {
  release(res.body);
  throw new GatewayError('UPSTREAM_RESPONSE_INVALID', message);
}

/** Closes a provider body nobody will read; the error its destruction raises (undici: "Request aborted") is nobody's to handle. */
function release(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}
