import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { anthropicErrorBody } from '../core/errors.js';
import { GovernanceStoreError, type GovernanceStore } from '../governance/store.js';
import { ROUTES, type Answer, type Route } from './routes.js';

/**
 * The admin operations' one dispatch: path → route of ROUTES, the body or query validated by the
 * route's zod schema, the store's refusals as 404/409. Who may call it is decided before it: the
 * admin API by its bearer key (server.ts), the console by its session, role and CSRF token.
 */

/** Largest admin request body; past it: 413 and the connection closes. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export const adminError = (status: number, message: string): Answer => ({ status, body: anthropicErrorBody(status, message) });

/** An admin operation's answer, or 'too_large' when its body passed MAX_ADMIN_BODY_BYTES. */
export type AdminDispatch = (req: IncomingMessage, pathname: string, search: URLSearchParams) => Promise<Answer | 'too_large'>;

interface Compiled {
  readonly route: Route;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

const compiled: readonly Compiled[] = ROUTES.map((route) => {
  const names: string[] = [];
  const pattern = new RegExp(`^${route.path.replace(/\{(\w+)\}/g, (_, n: string) => (names.push(n), '([A-Za-z0-9_-]{1,100})'))}$`);
  return { route, pattern, names };
});

/** The first problem zod found, naming its field: `budgets.0.usd: Too small: expected number to be >=0`. */
function problemOf(issues: readonly z.core.$ZodIssue[]): string {
  const issue = issues[0];
  if (issue === undefined) return 'invalid request';
  const field = issue.path.map(String).join('.');
  return field === '' ? issue.message : `${field}: ${issue.message}`;
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_ADMIN_BODY_BYTES) {
      resolve('too_large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ADMIN_BODY_BYTES) {
        req.removeAllListeners('data');
        req.pause();
        resolve('too_large');
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Dispatches `pathname` (an /admin/... path) to its route of ROUTES over `store`. */
export function adminDispatch(store: GovernanceStore): AdminDispatch {
  return async (req, pathname, search) => {
    let pathMatched = false;
    for (const { route, pattern, names } of compiled) {
      const match = pattern.exec(pathname);
      if (match === null) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const params = Object.fromEntries(names.map((n, i) => [n, match[i + 1] as string]));
      let input: unknown;
      if (route.body !== undefined) {
        const raw = await readBody(req);
        if (raw === 'too_large') return 'too_large';
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          return adminError(400, 'The body is not valid JSON');
        }
        const checked = route.body.safeParse(parsed);
        if (!checked.success) return adminError(400, problemOf(checked.error.issues));
        input = checked.data;
      } else if (route.query !== undefined) {
        const checked = route.query.safeParse(Object.fromEntries(search));
        if (!checked.success) return adminError(400, problemOf(checked.error.issues));
        input = checked.data;
      }
      try {
        return await route.handle(store, { params, input });
      } catch (err) {
        if (err instanceof GovernanceStoreError) {
          if (err.problem === 'team_not_found') return adminError(404, `team_id: ${err.message}`);
          return adminError(409, err.message);
        }
        throw err;
      }
    }
    return pathMatched ? adminError(405, `Method ${req.method ?? ''} not allowed on ${pathname}`) : adminError(404, `No admin route ${pathname}`);
  };
}
