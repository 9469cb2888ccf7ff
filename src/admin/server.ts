import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GovernanceStore } from '../governance/store.js';
import type { Logger } from '../observability/logger.js';
import { adminDispatch, adminError as error, MAX_ADMIN_BODY_BYTES } from './dispatch.js';
import { openApiDocument } from './openapi.js';
import { ROUTES, type Answer } from './routes.js';

/**
 * The admin API: JSON over its own listener (ADMIN_HOST:ADMIN_PORT, loopback by default), never the
 * clients' one, under `Authorization: Bearer <ADMIN_API_KEY>`. Gateway keys (static or database)
 * are not admin credentials: they are simply not the admin key. Nothing a request sends reaches SQL
 * text (the store binds parameters); bodies are bounded and validated strictly.
 */

/** Another surface on the admin listener (the web console): answers the requests it serves (true), declines the rest. */
export type AdminSurface = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export interface AdminOptions {
  store: GovernanceStore;
  adminApiKey: string;
  logger: Logger;
  version: string;
  /** Asked first for every path outside /admin/ (the console: `/` and `/console/...`). */
  surface?: AdminSurface | undefined;
}

export function adminHandler(options: AdminOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, logger } = options;
  const dispatch = adminDispatch(store);
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
    return dispatch(req, url.pathname, url.searchParams);
  };

  const api = (req: IncomingMessage, res: ServerResponse): void => {
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
  const { surface } = options;
  if (surface === undefined) return api;
  return (req, res) => {
    if (req.url?.startsWith('/admin/') === true) {
      api(req, res);
      return;
    }
    surface(req, res).then(
      (answered) => {
        if (!answered) api(req, res);
      },
      (err: unknown) => {
        logger.error({ err, method: req.method, path: req.url?.split('?')[0] }, 'console request failed');
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
  options: AdminOptions,
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
