import type { CallGovernance, GovernedRequest } from '../governance/govern.js';
import { claudeCodeSession } from '../governance/govern.js';
import type { KeyLimits } from '../governance/key-limits.js';
import { contextOf } from './context.js';
import type { Exchange } from './exchange.js';
import type { Stage } from './stage.js';

/**
 * The edge's side of governance (issue 26): what the answer sources hand it of a request. Built
 * only for a request governance applies to (a database key's, or any while a ledger is kept).
 */
export function governedRequest(governance: CallGovernance | undefined, exchange: Exchange): GovernedRequest | undefined {
  const { ctx, res, req } = exchange;
  if (governance === undefined || !governance.applies(ctx)) return undefined;
  return {
    principal: ctx.principal,
    mode: ctx.mode,
    endpoint: exchange.request.endpoint,
    model: exchange.model,
    body: Buffer.isBuffer(exchange.body) ? exchange.body : null,
    receivedAt: ctx.receivedAt,
    session: claudeCodeSession(req.headers['x-claude-code-session-id']),
    setHeaders: (pairs) => {
      if (res.headersSent) return;
      for (let i = 0; i + 1 < pairs.length; i += 2) res.setHeader(pairs[i] as string, pairs[i + 1] as string);
    },
  };
}

/**
 * Per-key limits of a database key (governance/key-limits.ts), after auth: a refusal is a 429
 * before anything is read or sent; the concurrency slot is released when the response is over.
 */
export function keyLimitsStage(limits: KeyLimits): Stage {
  return async (req, res, next) => {
    const principal = contextOf(req).principal;
    if (principal === undefined) {
      next();
      return;
    }
    const release = await limits.admit(principal);
    res.once('close', release);
    next();
  };
}
