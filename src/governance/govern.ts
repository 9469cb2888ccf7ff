import { randomUUID } from 'node:crypto';
import type { TokenUsage } from '../core/token-usage.js';
import type { Dispatch, UpstreamCall, CallContext } from '../pipeline/call/index.js';
import type { FlightSource } from '../pipeline/coalesce/flight.js';
import { answerValue } from '../upstream/header-list.js';
import type { BudgetMetrics } from './budget-metrics.js';
import { appendBudgetHeaders, lastBudgetHeaders, type Budgets, type Remaining, type Reservation } from './budgets.js';
import { usageTokens, ZERO_COST, type CallCost, type CostEstimator } from './cost-estimate.js';
import type { KeyLimits } from './key-limits.js';
import type { LedgerWriter } from './ledger-writer.js';
import type { LedgerRow, LedgerSource, Principal } from './model.js';
import { asError } from '../core/errors.js';

/**
 * The edge's hooks into governance (issue 26), for one request: the answer sources call them.
 * - `lead`: wraps the upstream call of a flight this request leads. It reserves the call's worst
 *   case before dispatching and registers, on the flight's scope, the one hook that settles it and
 *   writes the ledger row when the call ends. The flight runs every hook exactly once, however the
 *   call ends (answer, upstream failure, failover, client gone, flight abandoned), and a refused
 *   reservation throws before anything is sent or registered: every reservation ends exactly once.
 * - `reused`: an answer that cost nothing upstream (coalesced follower, lingering answer, cache
 *   hit): no reservation, one ledger row with what it saved.
 * - `headers`: the remaining-budget headers for an answer that reserves nothing (the last values
 *   this instance saw for the key).
 */

/** What governance needs of a request (the edge builds it from its context). */
export interface GovernedRequest {
  readonly principal: Principal | undefined;
  readonly mode: string;
  readonly endpoint: string;
  /** The raw model of the body. */
  readonly model: string | undefined;
  /** The JSON body read whole (null: none, or one that streams through). */
  readonly body: Buffer | null;
  /** performance.now() when the request arrived. */
  readonly receivedAt: number;
  /** `x-claude-code-session-id`, when well-formed. */
  readonly session: string | undefined;
  /**
   * The remaining amounts of this request's own reservation (a leader's), set before the head is
   * written: the edge appends their header pairs to the head as it writes it (one write, no
   * setHeader: that made node merge every upstream header one by one; see appendAnswerHeaders).
   */
  reserved: Remaining | undefined;
  /**
   * The key's last remaining amounts this instance saw, for an answer that reserves nothing (its
   * header pairs are made only if such an answer is written: see appendAnswerHeaders).
   */
  lastRemaining: Remaining | undefined;
}

/**
 * Appends the header pairs governance adds to the answer's head to `out`: the reservation's
 * remaining budget (formatted straight into the head's pairs), else the key's last values seen.
 */
export function appendAnswerHeaders(g: GovernedRequest, out: string[]): void {
  if (g.reserved !== undefined) appendBudgetHeaders(out, g.reserved);
  else if (g.lastRemaining !== undefined) for (const item of lastBudgetHeaders(g.lastRemaining)) out.push(item);
}

export interface GovernanceDeps {
  /** Budgets (undefined: none are enforced). */
  readonly budgets: Budgets | undefined;
  readonly estimator: CostEstimator;
  /** Where ledger rows go (undefined: no ledger). */
  readonly ledger: LedgerWriter | undefined;
  /** Per-key limits; `lead` records each call's tokens for tokensPerMinute. */
  readonly keyLimits: KeyLimits | undefined;
  readonly metrics?: BudgetMetrics | undefined;
}

const SESSION_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The Claude Code session header when it is a plausible id (anything else is not recorded). */
export function claudeCodeSession(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && SESSION_PATTERN.test(v) ? v : undefined;
}

export class CallGovernance {
  constructor(private readonly deps: GovernanceDeps) {}

  /** Whether this request has anything to govern or record. */
  applies(g: { principal: Principal | undefined }): boolean {
    return g.principal !== undefined || this.deps.ledger !== undefined;
  }

  /** Notes the key's last remaining amounts, for an answer that reserves nothing (a leader's reservation sets fresh ones). */
  headers(g: GovernedRequest): void {
    if (g.principal === undefined || this.deps.budgets === undefined) return;
    g.lastRemaining = this.deps.budgets.lastRemaining(g.principal);
  }

  lead(g: GovernedRequest, call: UpstreamCall, scope: CallContext, dispatch: Dispatch): Promise<FlightSource> {
    const { budgets, estimator } = this.deps;
    const principal = g.principal;
    let reservation: Reservation | Promise<Reservation> | undefined;
    try {
      reservation = principal === undefined || budgets === undefined ? undefined : budgets.admit(principal, estimator.worstCase(g.endpoint, g.model, g.body));
    } catch (err) {
      return Promise.reject(asError(err));
    }
    // In-process counters answer at once: no promise between the request and its dispatch.
    if (reservation instanceof Promise) return reservation.then((r) => this.dispatchHeld(g, r, call, scope, dispatch));
    return this.dispatchHeld(g, reservation, call, scope, dispatch);
  }

  /** Dispatches the call that holds `reservation`; the flight's one end hook settles it and writes the ledger row. */
  private dispatchHeld(g: GovernedRequest, reservation: Reservation | undefined, call: UpstreamCall, scope: CallContext, dispatch: Dispatch): Promise<FlightSource> {
    const { estimator, ledger, keyLimits } = this.deps;
    const principal = g.principal;
    g.reserved = reservation?.remaining;
    scope.finally((outcome) => {
      const { facts } = scope;
      const meter = facts.meter;
      const usage = meter?.hasUsage === true ? meter.usage : undefined;
      const model = call.model ?? meter?.model;
      // A call relayed from another instance was billed (and reserved) there.
      const relayed = facts.origin === 'remote';
      const billed = usage === undefined ? ZERO_COST : { microUsd: estimator.billedMicroUsd(model, facts.upstream, usage), tokens: usageTokens(usage) };
      const actual: CallCost = relayed ? ZERO_COST : billed;
      reservation?.end(actual);
      if (principal !== undefined && actual.tokens > 0) keyLimits?.spentTokens(principal, actual.tokens);
      if (principal !== undefined) this.deps.metrics?.spent(principal.teamName, actual.microUsd);
      // An upstream call (sent), or a relayed answer (a reuse); a call never sent (refused, breaker open) is no row.
      if (ledger === undefined || (!relayed && facts.sentAt === undefined)) return;
      ledger.push(rowOf(g, outcome.head === undefined ? undefined : answerValue(outcome.head.headers, 'request-id'), outcome.head?.status ?? 0, relayed ? 'coalesced' : 'upstream', model, facts.upstream, usage, relayed ? 0 : billed.microUsd, relayed ? billed.microUsd : 0));
    });
    return dispatch(call, scope);
  }

  /** An answer reused without an upstream call of its own: one ledger row of what it saved. */
  reused(g: GovernedRequest, answer: { usage: TokenUsage | undefined; model: string | undefined }, source: Exclude<LedgerSource, 'upstream'>, status: number, requestId: string | undefined): void {
    const { ledger, estimator } = this.deps;
    if (ledger === undefined) return;
    const model = g.model ?? answer.model;
    const saved = answer.usage === undefined ? 0 : estimator.billedMicroUsd(model, undefined, answer.usage);
    ledger.push(rowOf(g, requestId, status, source, model, undefined, answer.usage, 0, saved));
  }
}

function rowOf(g: GovernedRequest, requestId: string | undefined, status: number, source: LedgerSource, model: string | undefined, upstream: string | undefined, usage: TokenUsage | undefined, cost: number, saved: number): LedgerRow {
  const p = g.principal;
  return {
    at: Date.now(),
    requestId: requestId ?? `gw_${randomUUID()}`,
    keyId: p?.keyId,
    teamId: p?.teamId,
    userId: p?.userId,
    mode: g.mode,
    model,
    upstream,
    status,
    source,
    inputTokens: usage?.input ?? 0,
    outputTokens: usage?.output ?? 0,
    cacheCreationInputTokens: usage?.cache_creation ?? 0,
    cacheReadInputTokens: usage?.cache_read ?? 0,
    costMicroUsd: cost,
    savedMicroUsd: saved,
    latencyMs: Math.round(performance.now() - g.receivedAt),
    claudeCodeSession: g.session,
  };
}
