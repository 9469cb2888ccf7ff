import type { Span } from '@opentelemetry/api';
import type { UsageMeter } from '../../upstream/usage.js';

/**
 * What the call learned on its way, written by the interceptor that knows it and read after the
 * outcome (accounting, tracing, the edge). Each field has exactly one writer, named here.
 */
export interface CallFacts {
  /** route: name of the upstream whose answer this is (the last attempt's). */
  upstream: string | undefined;
  /** share: whether this instance made the upstream call or relayed another instance's. */
  origin: 'upstream' | 'remote' | undefined;
  /**
   * Whether the answer's body, once it ended, ended where its framing says it must rather than where
   * a connection happened to close. transport: the HTTP framing of the call's own answer
   * (upstream/client.ts `delimited`). share: for an answer relayed from another instance, that
   * instance's verdict (pipeline/reuse.ts) as its end entry carried it, written when the relay ended.
   * The two writers never meet: a relayed call runs no transport.
   */
  framed: boolean | undefined;
  /** transport: performance.now() when the (last) upstream request was sent. */
  sentAt: number | undefined;
  /** transport: performance.now() when the upstream response headers arrived. */
  headersAt: number | undefined;
  /** meter: usage, model and stream error of the answer's body. */
  meter: UsageMeter | undefined;
  /** trace: the upstream CLIENT span. */
  span: Span | undefined;
}

export function newFacts(): CallFacts {
  return { upstream: undefined, origin: undefined, framed: undefined, sentAt: undefined, headersAt: undefined, meter: undefined, span: undefined };
}
