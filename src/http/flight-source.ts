import type { IncomingMessage } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.js';
import { linkTo } from '../observability/tracing.js';
import { recordDelivery } from '../pipeline/accounting.js';
import type { Dispatch, UpstreamCall } from '../pipeline/call/index.js';
import type { TokenUsage } from '../core/token-usage.js';
import type { CallOutcome, CallScope, CallWatcher, Flight, SubscriberListener, SubscriberOutcome } from '../pipeline/coalesce/flight.js';
import type { FlightGroup } from '../pipeline/coalesce/flight-group.js';
import type { CoalesceRole } from '../pipeline/coalesce/policy.js';
import type { CachedAnswer } from '../pipeline/cache/response-cache.js';
import { forwardRequestHeaders } from '../upstream/headers.js';
import { isAbort, translateUpstreamError } from '../upstream/client.js';
import { isBatchPath, rewriteResultsUrls } from '../upstream/batch-results-url.js';
import type { CallGovernance } from '../governance/govern.js';
import type { RequestContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { RequestClass } from './request-class.js';
import { answerToKeep } from './finished-answers.js';
import { noteRequestId } from './request-id.js';
import { roleHeaders } from './governance.js';

export interface FlightSourceDeps {
  readonly flights: FlightGroup;
  readonly metrics: GatewayMetrics;
  /** The upstream call chain (pipeline/call). */
  readonly upstream: Dispatch;
  /** In injection mode the client's credential headers carry the gateway key: they never travel. */
  readonly dropCredentials: boolean;
  /** Where this client reached the gateway (for answers that name it: batch results_url). */
  readonly gatewayBaseUrl: (req: IncomingMessage, viaBasePath: boolean) => string;
  /** Where whole answers of calls this source led are kept for reuse (cache and lingering tiers). */
  readonly keeper: AnswerKeeper;
  /** Budgets and the ledger (issue 26): a led call reserves; a joined one is recorded as a reuse. */
  readonly governance?: CallGovernance | undefined;
}

/** Keeps finished whole answers for requests that were not on their call. */
export interface AnswerKeeper {
  /** Whether an answer to this request would be kept anywhere (nothing is copied out of a flight otherwise). */
  wants(request: RequestClass): boolean;
  keep(exchange: Exchange, answer: CachedAnswer): void;
}

/**
 * The last answer source, which always answers: joins the identical call in flight (a follower),
 * or leads a new one (a leader, or `bypass` when the request may share nothing). The request's role
 * has one record, `ctx.role`: set here when the flight is chosen, and turned into `follower` at the
 * head when the call this instance led was relayed from another instance's upstream call.
 * Everything about the upstream call itself happens in the flight (pipeline/): this source only
 * subscribes the client and turns a failure before any byte into the error answer. Resolves with
 * the answer's usage when this client got the whole answer and it reported usage (else undefined).
 */
export function flightSource(deps: FlightSourceDeps, done: FlightDone): (exchange: Exchange) => void {
  const { flights, metrics } = deps;
  // Once, not an options literal per led call.
  const forwarding = { dropCredentials: deps.dropCredentials };
  // No promise: the subscriber's outcome comes to one object per client (FlightClient), after the client left the flight.
  return (exchange) => {
    const { res, ctx, request, key } = exchange;
    const existing = request.coalescing ? flights.find(key) : undefined;
    /** Joined an identical call of this instance (not a relay: that one this instance leads). */
    const joined = existing !== undefined;
    const flight = existing ?? (request.coalescing ? flights.lead(key) : flights.solo());
    ctx.role = joined ? 'follower' : request.coalescing ? 'leader' : 'bypass';
    const client = new FlightClient(deps, exchange, flight, joined, done);
    // Subscribe before the flight can run: the leader must never miss its own head.
    flight.listen(res, () => client.beforeHead(), client);
    if (joined) metrics.coalesced.inc({ endpoint: request.endpoint, mode: metrics.modes.known(ctx.mode) });
    else lead(deps, exchange, flight, forwarding, client);
  };
}

/** Told once a client's subscription ended: the error to answer with (a failure before any byte), else the usage this client got whole. */
export type FlightDone = (exchange: Exchange, error: unknown, usage: TokenUsage | undefined) => void;

/**
 * One client of a flight, as one object: its head's own headers, its outcome, and (when it led the
 * call and the answer may be kept) the call's outcome. Three callbacks without a closure each.
 */
class FlightClient implements SubscriberListener, CallWatcher {
  constructor(
    private readonly deps: FlightSourceDeps,
    private readonly exchange: Exchange,
    private readonly flight: Flight,
    private readonly joined: boolean,
    private readonly done: FlightDone,
  ) {}

  /** Just before this client's head is written: its role, as the head tells it, and its own headers. */
  beforeHead(): readonly string[] | undefined {
    const { ctx } = this.exchange;
    const flight = this.flight;
    if (ctx.role === 'leader' && flight.facts.origin === 'remote') ctx.role = 'follower';
    if (ctx.role !== 'follower') observeOverhead(this.deps.metrics, ctx, flight);
    return roleHeaders(ctx.role as CoalesceRole, this.exchange);
  }

  subscriberDone(outcome: SubscriberOutcome): void {
    let usage: TokenUsage | undefined;
    try {
      usage = settle(this.deps, this.exchange, this.flight, this.joined, outcome);
    } catch (err) {
      this.done(this.exchange, err, undefined);
      return;
    }
    this.done(this.exchange, undefined, usage);
  }

  /** The led call is over (its hooks ran): its whole answer is offered for keeping. */
  callOver(outcome: CallOutcome): void {
    keepFrom(this.deps.keeper, this.exchange, this.flight, outcome);
  }
}

/** After this client's subscription ended: what a joined call records, the error answer of a failure before any byte, and the usage this client got whole. */
function settle(deps: FlightSourceDeps, exchange: Exchange, flight: Flight, joined: boolean, outcome: SubscriberOutcome): TokenUsage | undefined {
  const { metrics } = deps;
  const { res, ctx } = exchange;
  if (ctx.role === 'follower') {
    const sharedSpan = flight.facts.span;
    if (sharedSpan !== undefined) ctx.span?.addLink(linkTo(sharedSpan));
  }
  if (joined && outcome.kind === 'served' && outcome.complete && res.statusCode < 300 && flight.facts.meter !== undefined) {
    recordDelivery(metrics, ctx.mode, exchange.model, flight.facts.meter, 'coalesced');
  }
  if (joined && exchange.governed !== undefined && outcome.kind === 'served') {
    const meter = flight.facts.meter;
    deps.governance?.reused(exchange.governed, { usage: meter?.hasUsage === true ? meter.usage : undefined, model: meter?.model }, 'coalesced', res.statusCode, undefined);
  }
  if (outcome.kind === 'failed') {
    if (isAbort(outcome.error)) return undefined;
    throw translateUpstreamError(outcome.error, 'headers');
  }
  noteRequestId(flight.answerHead, ctx);
  if (outcome.kind === 'gone' && (outcome.reason === 'slow' || outcome.reason === 'stalled')) {
    ctx.errorCode = outcome.reason === 'slow' ? 'SLOW_CLIENT_DROPPED' : 'STALLED_CLIENT_DROPPED';
  }
  // This client has the whole answer, so the meter has seen every byte: finishing it here (as
  // answerToKeep does; it is idempotent) reads a plain JSON answer's usage before the flight's hooks ran.
  const meter = outcome.kind === 'served' && outcome.complete ? flight.facts.meter : undefined;
  return meter?.finish() === true ? meter.usage : undefined;
}

/** Starts the upstream call of a flight this request leads (or runs alone), and offers its answer for keeping. */
function lead(deps: FlightSourceDeps, exchange: Exchange, flight: Flight, forwarding: { readonly dropCredentials: boolean }, client: FlightClient): void {
  const { req, ctx, request, body } = exchange;
  const { path, viaBasePath } = request;
  // Once per led call (a flight's description for the console; nothing per chunk).
  flight.label = { mode: ctx.mode, model: exchange.model, tenant: ctx.tenant, ledAt: ctx.receivedAt };
  // Batch answers carry an absolute results_url: re-root it at the address this client used.
  const rewriteJson = isBatchPath(path)
    ? (bytes: Buffer, upstreamBaseUrl: string) => rewriteResultsUrls(bytes, upstreamBaseUrl, deps.gatewayBaseUrl(req, viaBasePath))
    : undefined;
  const headers = forwardRequestHeaders(req.rawHeaders, forwarding);
  const length = req.headers['content-length'];
  if (body === req && length !== undefined) headers.push('content-length', length);
  const call: UpstreamCall = {
    method: request.method,
    path,
    headers,
    body,
    endpoint: request.endpoint,
    mode: ctx.mode,
    model: exchange.model,
    sharedKey: request.coalescing ? exchange.key : undefined,
    affinity: exchange.affinity,
    rewriteJson,
    parentSpan: ctx.span,
  };
  const { upstream, governance, keeper } = deps;
  const governed = exchange.governed;
  // Told right after the call's hooks ran (where the promise's reaction ran just after them).
  const watcher = keeper.wants(request) ? client : undefined;
  if (governance === undefined || governed === undefined) flight.launch(upstream, call, watcher);
  else flight.launch((c: UpstreamCall, scope: CallScope) => governance.lead(governed, c, scope, upstream), call, watcher);
}

/** Offers a led call's whole answer for keeping; a throw here must never escape into the flight: the answer is simply not kept. */
function keepFrom(keeper: AnswerKeeper, exchange: Exchange, flight: Flight, outcome: CallOutcome): void {
  try {
    const answer = answerToKeep(flight, outcome);
    if (answer !== undefined) keeper.keep(exchange, answer);
  } catch {
    // not kept
  }
}

/** The time the gateway itself added for the client whose request made the call: received → sent, plus upstream head → client head. */
function observeOverhead(metrics: GatewayMetrics, ctx: RequestContext, flight: Flight): void {
  const { sentAt, headersAt, origin } = flight.facts;
  if (origin !== 'upstream' || sentAt === undefined || headersAt === undefined) return;
  metrics.gatewayOverhead.observe({}, (sentAt - ctx.receivedAt + (performance.now() - headersAt)) / 1000);
}
