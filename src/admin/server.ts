import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import { anthropicErrorBody } from '../core/errors.js';
import { GovernanceStoreError, type GovernanceStore } from '../governance/store.js';
import type { Logger } from '../observability/logger.js';
import { openApiDocument } from './openapi.js';
import { ROUTES, type Answer, type Route } from './routes.js';

/**
 * The admin API: JSON over its own listener (ADMIN_HOST:ADMIN_PORT, loopback by default), never the
 * clients' one, under `Authorization: Bearer <ADMIN_API_KEY>`. Gateway keys (static or database)
 * are not admin credentials: they are simply not the admin key. Nothing a request sends reaches SQL
 * text (the store binds parameters); bodies are bounded and validated strictly.
 */

/** Largest admin request body; past it: 413 and the connection closes. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

const error = (status: number, message: string): Answer => ({ status, body: anthropicErrorBody(status, message) });

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

export function adminHandler(options: { store: GovernanceStore; adminApiKey: string; logger: Logger; version: string }): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, logger } = options;
  const expected = createHash('sha256').update(options.adminApiKey).digest();
  const document = JSON.stringify(openApiDocument(ROUTES, options.version));
  // Constant time: both sides are SHA-256 digests (equal length whatever was sent).
  const authorized = (req: IncomingMessage): boolean => {
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || auth.length < 8 || auth.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(createHash('sha256').update(auth.slice(7).trim()).digest(), expected);
  };

  const answer = async (req: IncomingMessage): Promise<Answer | 'too_large'> => {
    if (!authorized(req)) return error(401, 'Missing or invalid admin credential: send Authorization: Bearer <ADMIN_API_KEY>');
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/admin/openapi.json' && req.method === 'GET') return { status: 200, body: document };
    let pathMatched = false;
    for (const { route, pattern, names } of compiled) {
      const match = pattern.exec(url.pathname);
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
          return error(400, 'The body is not valid JSON');
        }
        const checked = route.body.safeParse(parsed);
        if (!checked.success) return error(400, problemOf(checked.error.issues));
        input = checked.data;
      } else if (route.query !== undefined) {
        const checked = route.query.safeParse(Object.fromEntries(url.searchParams));
        if (!checked.success) return error(400, problemOf(checked.error.issues));
        input = checked.data;
      }
      try {
        return await route.handle(store, { params, input });
      } catch (err) {
        if (err instanceof GovernanceStoreError) {
          if (err.problem === 'team_not_found') return error(404, `team_id: ${err.message}`);
          return error(409, err.message);
        }
        throw err;
      }
    }
    return pathMatched ? error(405, `Method ${req.method ?? ''} not allowed on ${url.pathname}`) : error(404, `No admin route ${url.pathname}`);
  };

  return (req, res) => {
    answer(req).then(
      (result) => {
        if (result === 'too_large') {
          res.setHeader('connection', 'close');
          send(res, error(413, `The body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`));
          return;
        }
        send(res, result);
      },
      (err: unknown) => {
        logger.error({ err, method: req.method, path: req.url?.split('?')[0] }, 'admin request failed');
        send(res, error(500, 'Internal error (logged)'));
      },
    );
  };
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.headersSent) return;
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface AdminListener {
  readonly server: Server;
  /** http://host:port of the admin API. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startAdminListener(
  settings: { host: string; port: number },
  options: { store: GovernanceStore; adminApiKey: string; logger: Logger; version: string },
): Promise<AdminListener> {
  const server = createServer(adminHandler(options));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: settings.port, host: settings.host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : settings.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  options.logger.info({ url }, 'admin API listening');
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
