import type { CallGovernance, GovernedRequest } from '../governance/govern.js';
import { appendAnswerHeaders, claudeCodeSession } from '../governance/govern.js';
import type { KeyLimits } from '../governance/key-limits.js';
import { contextOf } from './context.js';
import type { Exchange } from './exchange.js';
import type { ServerResponse } from 'node:http';
import type { Principal } from '../governance/model.js';
import type { Next, Stage } from './stage.js';
import { ROLE_HEADER, type CoalesceRole } from '../pipeline/coalesce/policy.js';

/**
 * The edge's side of governance (issue 26): what the answer sources hand it of a request. Built
 * only for a request governance applies to (a database key's, or any while a ledger is kept).
 */
export function governedRequest(governance: CallGovernance | undefined, exchange: Exchange): GovernedRequest | undefined {
  const { ctx, req } = exchange;
  if (governance === undefined || !governance.applies(ctx)) return undefined;
  return {
    principal: ctx.principal,
    mode: ctx.mode,
    endpoint: exchange.request.endpoint,
    model: exchange.model,
    body: Buffer.isBuffer(exchange.body) ? exchange.body : null,
    receivedAt: ctx.receivedAt,
    session: claudeCodeSession(req.headers['x-claude-code-session-id']),
    reserved: undefined,
    lastRemaining: undefined,
  };
}

/** Each coalescing role's own header pair, shared by every answer governance adds nothing to (the flight only reads them). */
const ROLE_PAIRS: Readonly<Record<CoalesceRole, readonly string[]>> = {
  leader: [ROLE_HEADER, 'leader'],
  follower: [ROLE_HEADER, 'follower'],
  bypass: [ROLE_HEADER, 'bypass'],
  cache: [ROLE_HEADER, 'cache'],
};

/** A client's own answer headers: its coalescing role, plus governance's when the request is governed (a fresh list then). */
export function roleHeaders(role: CoalesceRole, exchange: Exchange): readonly string[] {
  if (exchange.governed === undefined) return ROLE_PAIRS[role];
  const own = [ROLE_HEADER, role];
  appendAnswerHeaders(exchange.governed, own);
  return own;
}

/**
 * Per-key limits of a database key (governance/key-limits.ts), after auth: a refusal is a 429
 * before anything is read or sent; the concurrency slot is released when the response is over.
 */
export function keyLimitsStage(limits: KeyLimits): Stage {
  const admit = async (principal: Principal, res: ServerResponse, next: Next): Promise<void> => {
    const release = await limits.admit(principal);
    res.once('close', release);
    next();
  };
  return (req, res, next) => {
    const principal = contextOf(req).principal;
    const l = principal?.limits;
    // Most keys have no per-key limits: no promise for them.
    if (principal === undefined || (l?.requestsPerMinute === undefined && l?.tokensPerMinute === undefined && l?.maxConcurrent === undefined)) {
      next();
      return undefined;
    }
    return admit(principal, res, next);
  };
}
