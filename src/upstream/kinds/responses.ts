import { Readable } from 'node:stream';
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

/** An answer whose body is produced from the provider's whole (small) body; errors destroy the new body. */
export function rewrittenAnswer(res: ProviderResponse, status: number, headers: UpstreamHeaders, rewrite: (whole: Buffer) => Buffer, kind: string): ProviderResponse {
  const source = res.body;
  const body = Readable.from(
    (async function* () {
      yield rewrite(await readWhole(source, MAX_REWRITTEN_BODY, kind));
    })(),
    { objectMode: false },
  );
  // The consumer leaving early must release the provider's connection too.
  body.once('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  return { status, headers, body, decoded: true };
}
