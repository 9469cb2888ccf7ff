import type { ServerResponse } from 'node:http';
import { deferred, type Deferred } from './deferred.js';
import { scriptedUpstream, sseEvent, type ScriptedUpstream } from './scripted-upstream.js';

/**
 * An upstream whose streamed answer the test releases in two steps, so faults can be injected at a
 * known point without sleeps: `first` (message_start and the first delta) is written as soon as a
 * call arrives (or after `head` is released, with `holdHead`), `rest` once `release()` is called.
 * The answer is the same for every call, so each client's bytes can be compared with `expected`.
 */
export interface PacedUpstream extends ScriptedUpstream {
  readonly calls: number;
  /** Bytes of the whole streamed answer, as upstream sends them. */
  readonly expected: string;
  /** Output tokens the answer reports (billing checks). */
  readonly outputTokens: number;
  /** Lets every call, present and future, send the rest of its answer (with `split`, up to the split). */
  release(): void;
  /** With `split`: lets calls send what follows the split. */
  releaseEnd(): void;
  /** Holds the calls that arrive from now on again (head too, with `holdHead`). */
  rearm(): void;
  /** Lets held calls send their head (with `holdHead`). */
  releaseHead(): void;
  /** Calls whose client connection closed before the end. */
  readonly abandoned: number;
}

export async function pacedUpstream(options: { bodyBytes?: number; holdHead?: boolean; split?: number } = {}): Promise<PacedUpstream> {
  const total = options.bodyBytes ?? 2_000;
  const deltaSize = 64 * 1024;
  const deltas: string[] = [];
  for (let left = total, i = 0; left > 0; i++) {
    const n = Math.min(deltaSize, left);
    deltas.push(String.fromCharCode(97 + (i % 26)).repeat(n));
    left -= n;
  }
  const outputTokens = Math.ceil(total / 4);
  const first =
    sseEvent('message_start', { type: 'message_start', message: { id: 'msg_paced', type: 'message', role: 'assistant', model: 'claude-sonnet-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 11, output_tokens: 1 } } }) +
    sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
    sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: deltas[0] } });
  const restEvents = deltas.slice(1).map((text) => sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }));
  restEvents.push(
    sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
    sseEvent('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens } }),
    sseEvent('message_stop', { type: 'message_stop' }),
  );
  let calls = 0;
  let abandoned = 0;
  let rest: Deferred<void> = deferred();
  let end: Deferred<void> = deferred();
  let head: Deferred<void> = deferred();
  if (options.holdHead !== true) head.resolve();
  if (options.split === undefined) end.resolve();
  const split = options.split ?? restEvents.length;
  const answer = async (res: ServerResponse): Promise<void> => {
    // Written by the close listener, read between awaits.
    let gone = false;
    const clientGone = (): boolean => gone;
    res.once('close', () => {
      if (!res.writableFinished) {
        gone = true;
        abandoned++;
      }
    });
    const gates = { head: head.promise, rest: rest.promise, end: end.promise };
    await gates.head;
    if (clientGone()) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_paced' });
    res.write(first);
    await gates.rest;
    // Written with backpressure, so a 6 MiB answer really flows through the gateway's pump.
    for (const [i, event] of restEvents.entries()) {
      if (i === split) await gates.end;
      if (clientGone()) return;
      if (!res.write(event)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  };
  const server = await scriptedUpstream((req, res) => {
    req.resume();
    req.once('end', () => {
      calls++;
      void answer(res);
    });
  });
  return {
    ...server,
    get calls() {
      return calls;
    },
    get abandoned() {
      return abandoned;
    },
    expected: first + restEvents.join(''),
    outputTokens,
    release: () => rest.resolve(),
    releaseEnd: () => end.resolve(),
    releaseHead: () => head.resolve(),
    rearm: () => {
      rest = deferred();
      if (options.split !== undefined) end = deferred();
      if (options.holdHead === true) head = deferred();
    },
  };
}
