import type { Request } from './load.js';

/**
 * Request bodies of the benchmark. Every body is distinct (its number is in the prompt), so the
 * gateway's coalescing never answers a request without an upstream call; the one workload about
 * coalescing builds its duplicates on purpose and says so.
 */

export const HEADERS = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench-0000000000', 'anthropic-version': '2023-06-01' };
const MODEL = 'claude-sonnet-5';

/** Prompt text that pads a body to the wanted size (ASCII, nothing JSON must escape). */
function filler(bytes: number): string {
  const word = 'lorem ipsum dolor sit amet ';
  return word.repeat(Math.ceil(bytes / word.length)).slice(0, bytes);
}

const FILL_1K = filler(900);
const FILL_1M = filler(1024 * 1024 - 200);

const messages = (content: string, extra = ''): string =>
  `{"model":"${MODEL}","max_tokens":16${extra},"messages":[{"role":"user","content":"${content}"}]}`;

/** About 1 KB, distinct per `i`. */
export const plain1k = (i: number): Request => ({ path: '/v1/messages', headers: HEADERS, body: messages(`request ${i} ${FILL_1K}`) });

/** About 1 MB, distinct per `i` (string concatenation: the load generator must not be the bottleneck). */
export const plain1m = (i: number): Request => ({ path: '/v1/messages', headers: HEADERS, body: messages(`request ${i} ${FILL_1M}`) });

/** A short streamed answer (16 SSE events: 10 text deltas and the envelope), distinct per `i`. */
export const stream = (i: number): Request => ({
  path: '/v1/messages',
  headers: HEADERS,
  body: `{"model":"${MODEL}","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"stream ${i}"}]}`,
});

/** A minimal streamed answer (7 SSE events, one text delta), distinct per `i`: for holding thousands open. */
export const liveStream = (i: number): Request => ({
  path: '/v1/messages',
  headers: HEADERS,
  body: `{"model":"${MODEL}","max_tokens":1,"stream":true,"messages":[{"role":"user","content":"live ${i}"}]}`,
});

/** Events the mock sends for `stream(i)`: message_start, content_block_start, ping, 10 deltas, stop, delta, stop. */
export const STREAM_EVENTS = 16;

/** COALESCING WORKLOAD: copy `i % distinct` of a prompt; identical bodies on purpose. */
export const duplicate = (burst: number, i: number, distinct: number): Request => ({
  path: '/v1/messages',
  headers: HEADERS,
  body: messages(`burst ${burst} prompt ${i % distinct}`),
});
