import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The edge's stages have Express's middleware shape, so they compose either way, but the hot API
 * path runs them through `compose` below instead of Express's router: measured on /v1/messages,
 * the router and its request decoration were the largest avoidable cost per request.
 */
export type Next = (err?: unknown) => void;
export type Stage = (req: IncomingMessage, res: ServerResponse, next: Next) => unknown;
export type ErrorStage = (err: unknown, req: IncomingMessage, res: ServerResponse) => void;

/** Runs stages in order; the first error (thrown, rejected or passed to next) goes to `onError`. */
export function compose(stages: readonly Stage[], onError: ErrorStage): (req: IncomingMessage, res: ServerResponse) => void {
  // One closure per request (`next`): the first error goes to `onError` once. A thrown or rejected
  // value reaches it through `next(e, true)`, so even `undefined` thrown counts as an error.
  return (req, res) => {
    let index = 0;
    let failed = false;
    const next = (err?: unknown, failing: boolean = err !== undefined): void => {
      if (failing) {
        if (failed) return;
        failed = true;
        onError(err, req, res);
        return;
      }
      const stage = stages[index++];
      if (stage === undefined) return;
      try {
        const result = stage(req, res, next);
        // Made only for a stage that answers with a promise.
        if (result instanceof Promise) result.catch((e: unknown) => next(e, true));
      } catch (e) {
        next(e, true);
      }
    };
    next();
  };
}

/** The path of a request without its query string. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function protocolOf(req: IncomingMessage): 'http' | 'https' {
  return 'encrypted' in req.socket && req.socket.encrypted === true ? 'https' : 'http';
}
