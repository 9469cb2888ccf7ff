import { Readable } from 'node:stream';
import { CallStop } from '../../src/core/call-stop.js';
import { GatewayError, type GatewayErrorCode } from '../../src/core/errors.js';
import { PriceTable } from '../../src/core/pricing.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import type { CallOutcome, CallScope, FlightHead, FlightSource } from '../../src/pipeline/coalesce/flight.js';
import { AttemptLimit } from '../../src/pipeline/call/attempt-limit.js';
import type { CallContext, Dispatch, RouteDecision, RoutedCall, UpstreamCall } from '../../src/pipeline/call/chain.js';
import { newFacts, type CallFacts } from '../../src/pipeline/call/facts.js';
import type { UpstreamClient } from '../../src/upstream/client.js';
import { translateUpstreamError } from '../../src/upstream/client.js';
import { answerHeadersOf } from '../../src/upstream/header-list.js';
import { AnthropicAdapter } from '../../src/upstream/kinds/anthropic.js';
import type { UpstreamAdapter } from '../../src/upstream/kinds/kind.js';
import type { UpstreamTarget } from '../../src/upstream/targets.js';
import { Upstream } from '../../src/upstream/upstreams.js';
import { parseMetrics, sum } from './prom.js';

/**
 * Drives one interceptor alone: a fake flight scope (what pipeline/coalesce/flight.ts gives a call:
 * facts, the stop, `onHead`, `observe`, `finally`, holds) and a scripted `next`. Nothing runs by
 * itself: the test hands the head on (`answered`, or pumping or settling an answer with a head runs
 * the head hooks first), pumps the body through the observers and settles the outcome, which runs
 * the `finally` hooks newest first, as the flight does.
 */
export class FakeScope implements CallScope {
  readonly facts: CallFacts = newFacts();
  readonly stop = new CallStop();
  readonly observers: ((chunk: Buffer) => void)[] = [];
  readonly headHooks: ((head: FlightHead) => void)[] = [];
  /** The head the head hooks ran with, once they ran. */
  head: FlightHead | undefined;
  readonly hooks: ((outcome: CallOutcome) => void)[] = [];
  readonly idleHooks: (() => void)[] = [];
  /** Holds taken and not released. */
  holds = 0;
  listeners = 1;
  settled: CallOutcome | undefined;

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  onHead(onHead: (head: FlightHead) => void): void {
    if (this.head === undefined) this.headHooks.push(onHead);
    else onHead(this.head);
  }

  observe(onChunk: (chunk: Buffer) => void): void {
    this.observers.push(onChunk);
  }

  /** The head is known: runs the head hooks once, in order (unguarded), as the flight does before anyone sees it. */
  headArrived(head: FlightHead): void {
    if (this.head !== undefined) return;
    this.head = head;
    for (const hook of this.headHooks.splice(0)) hook(head);
  }

  /** Awaits a dispatch as the flight does: its answer's head runs the head hooks before the test sees it. */
  async answered(dispatched: Promise<FlightSource>): Promise<FlightSource> {
    const answer = await dispatched;
    this.headArrived(answer.head);
    return answer;
  }

  finally(onSettle: (outcome: CallOutcome) => void): void {
    this.hooks.push(onSettle);
  }

  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
    };
  }

  onIdle(fn: () => void): void {
    this.idleHooks.push(fn);
  }

  localListeners(): number {
    return this.listeners;
  }

  /** Hands every chunk of the answer's body to the observers, in order; returns the bytes. */
  async pump(answer: FlightSource): Promise<Buffer> {
    this.headArrived(answer.head);
    const chunks: Buffer[] = [];
    for await (const chunk of answer.body) {
      chunks.push(chunk);
      for (const observe of this.observers) observe(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** Runs the `finally` hooks once, newest first (unguarded: a throwing hook fails the test). */
  settle(outcome: Partial<CallOutcome> & { head: FlightHead | undefined }): CallOutcome {
    if (this.settled !== undefined) throw new Error('FakeScope settled twice');
    const full: CallOutcome = { error: undefined, complete: outcome.error === undefined && outcome.head !== undefined, abandoned: false, subscribers: 1, ...outcome };
    this.settled = full;
    if (full.head !== undefined) this.headArrived(full.head);
    const hooks = this.hooks.splice(0);
    for (let i = hooks.length - 1; i >= 0; i--) (hooks[i] as (o: CallOutcome) => void)(full);
    return full;
  }

  /** Pumps the answer's body, then settles it as received whole. */
  async finish(answer: FlightSource): Promise<Buffer> {
    const bytes = await this.pump(answer);
    this.settle({ head: answer.head });
    return bytes;
  }
}

/** What a test may say of a call: the edge's fields, and the route's when it plays the route. */
export type CallOverrides = Partial<RoutedCall>;

/** Attempts no test of an inner interceptor counts unless it says so (`attempts`): as many as it makes. */
const UNCOUNTED_ATTEMPTS = Number.MAX_SAFE_INTEGER;

/**
 * A call as the edge classifies it (an `UpstreamCall`, for interceptors outside the route); given an
 * `upstream`, the call as the route hands it inward (a `RoutedCall`, for interceptors inside the
 * route): no alternatives and uncounted attempts unless told.
 */
export function fakeCall<O extends CallOverrides = CallOverrides>(overrides?: O): O extends { upstream: Upstream } ? RoutedCall : UpstreamCall;
export function fakeCall(overrides: CallOverrides = {}): UpstreamCall {
  const edge: UpstreamCall = {
    method: 'POST', path: '/v1/messages', headers: [], body: Buffer.from('{"model":"claude-sonnet-5"}'), endpoint: 'messages', mode: 'default',
    model: 'claude-sonnet-5', sharedKey: undefined, affinity: undefined, rewriteJson: undefined, parentSpan: undefined,
  };
  if (overrides.upstream === undefined) return { ...edge, ...overrides };
  const route: RouteDecision = { upstream: overrides.upstream, alternatives: 0, attempts: new AttemptLimit(UNCOUNTED_ATTEMPTS) };
  return { ...edge, ...route, ...overrides };
}

/** A call a fake `next` received: routed when it came through the route (or a test built it routed). */
export type SeenCall = UpstreamCall & Partial<RouteDecision>;

/** An answer: JSON unless told otherwise; `body` chunks as given. */
export function answer(status: number, headers: [string, string][] = [], body: string[] = ['{}'], eventStream = false): FlightSource {
  const type: [string, string] = ['content-type', eventStream ? 'text/event-stream' : 'application/json'];
  const head: FlightHead = { status, headers: answerHeadersOf(headers.some(([n]) => n === 'content-type') ? headers : [type, ...headers]), eventStream };
  // A stream, as the transport hands on (the route peeks at streams through their async iterator).
  return { head, body: Readable.from(body.map((s) => Buffer.from(s))) };
}

/** A body whose socket would need draining: records whether someone resumed (drained) it. */
export function drainableBody(chunks: string[] = ['{}']): { body: AsyncIterable<Buffer> & { resumed: boolean; resume(): void; on(): unknown } } {
  const body = {
    resumed: false,
    resume(): void {
      body.resumed = true;
    },
    on(): unknown {
      return body;
    },
    [Symbol.asyncIterator]: (): AsyncIterator<Buffer> => Readable.from(chunks.map((c) => Buffer.from(c)))[Symbol.asyncIterator](),
  };
  return { body };
}

export type Step = (call: SeenCall, ctx: CallContext) => FlightSource | Promise<FlightSource>;

/** The transport's part a fake `next` plays: an attempt that reached the wire spends one of the call's attempts. */
function spend(call: SeenCall): void {
  if (call.attempts !== undefined && !call.attempts.take()) throw new Error('fake next: sent with no attempt left');
}

/** A step that was sent and answered. */
export function answers(a: FlightSource | (() => FlightSource)): Step {
  return (call) => {
    spend(call);
    return typeof a === 'function' ? a() : a;
  };
}

/** A step that was sent (spent an attempt) and failed. */
export function fails(err: unknown): Step {
  return (call) => {
    spend(call);
    throw err;
  };
}

/** A step refused before anything was sent (an open breaker): spends nothing. */
export function refuses(err: unknown): Step {
  return () => {
    throw err;
  };
}

export interface ScriptedNext {
  readonly next: Dispatch;
  /** Every call `next` received, with the scope it was given. */
  readonly calls: { call: SeenCall; ctx: CallContext }[];
}

/** A fake inner dispatch that plays `steps` in order, failing loudly when out of script. */
export function scriptedNext(...steps: Step[]): ScriptedNext {
  const calls: ScriptedNext['calls'] = [];
  const next: Dispatch = async (call: SeenCall, ctx) => {
    calls.push({ call, ctx });
    const step = steps[calls.length - 1];
    if (step === undefined) throw new Error(`fake next: no step scripted for call ${calls.length}`);
    return step(call, ctx);
  };
  return { next, calls };
}

/** A fake inner dispatch answering per upstream (the route's tests): each upstream plays its own step. */
export function perUpstream(steps: Record<string, Step>): ScriptedNext {
  const calls: ScriptedNext['calls'] = [];
  const next: Dispatch = async (call: SeenCall, ctx) => {
    calls.push({ call, ctx });
    const name = call.upstream?.name ?? '';
    const step = steps[name];
    if (step === undefined) throw new Error(`fake next: no step scripted for upstream ${name}`);
    return step(call, ctx);
  };
  return { next, calls };
}

/**
 * The one place these tests build a GatewayError by hand (errors the gateway raises elsewhere: a breaker's
 * refusal, a credential failure, a client-caused refusal). Transport errors come from translateUpstreamError.
 */
export function gatewayError(code: GatewayErrorCode, headers: Record<string, string> = {}): GatewayError {
  return new GatewayError(code, `test: ${code}`, { headers });
}

/** A Node-style transport error translated as the upstream client does (ECONNREFUSED -> UPSTREAM_CONNECT_FAILED, ...). */
export function transportError(code: string, phase: 'headers' | 'body' = 'headers'): GatewayError {
  return translateUpstreamError(Object.assign(new Error(`test ${code}`), { code }), phase);
}

export function testMetrics(): GatewayMetrics {
  return new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
}

/** The sum of a metric's samples whose labels include `where`. */
export async function metricValue(metrics: GatewayMetrics, name: string, where: Record<string, string> = {}): Promise<number> {
  return sum(parseMetrics(await metrics.registry.metrics()), name, where);
}

/** A target of any kind, with what a test leaves out filled in. */
export function fakeTarget(name: string, extra: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    name, kind: 'anthropic', origin: 'http://127.0.0.1:9', pathPrefix: '', tier: 0, weight: 1, apiKey: 'sk-held', apiKeyEnv: 'K',
    models: undefined, region: undefined, project: undefined, awsProfile: undefined, bearerToken: undefined, http2: undefined, connections: undefined,
    pricing: undefined, holdsCredentials: true, ...extra,
  } as unknown as UpstreamTarget;
}

/** A client no test may use: interceptors above the transport never touch the pool. */
export const unusableClient = new Proxy({}, { get: () => { throw new Error('this test must not use the upstream client'); } }) as unknown as UpstreamClient;

export function fakeUpstream(name: string, extra: Partial<UpstreamTarget> = {}, client: UpstreamClient = unusableClient, adapter: UpstreamAdapter = new AnthropicAdapter('sk-held')): Upstream {
  return new Upstream(fakeTarget(name, extra), client, adapter);
}

/** Lets pending promise callbacks and I/O run (a real setImmediate: tests mock only setTimeout). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
