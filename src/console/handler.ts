import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import { adminError, MAX_ADMIN_BODY_BYTES, type AdminDispatch } from '../admin/dispatch.js';
import type { ConsoleAssets } from './assets.js';
import type { ConsoleCredentials, ConsoleRole } from './credentials.js';
import type { LiveReadings } from './live.js';
import { loginPage, PAGES, shellPage } from './pages.js';
import type { ConsoleSession, SessionStore } from './sessions.js';

export interface ConsoleDeps {
  readonly credentials: ConsoleCredentials;
  readonly sessions: SessionStore;
  readonly assets: ConsoleAssets;
  readonly live: LiveReadings;
  /** The admin API's operations (its route table and schemas), reached at /console/api/admin/...: GET by any session, changes by an admin with the CSRF token. */
  readonly admin: AdminDispatch;
  /** Readings beside /console/api/live (budgets, flights): name → JSON. GET only. */
  readonly readings: ReadonlyMap<string, () => Promise<unknown>>;
  /** Seconds a session lasts (the cookie's Max-Age). */
  readonly sessionSeconds: number;
  /** Notes a login (success or not) for the log; never given the key presented. */
  readonly onLogin?: (role: ConsoleRole | undefined, address: string | undefined) => void;
}

export const SESSION_COOKIE = 'cgw_console';
/** Login bodies are one short field: anything longer is refused before it is read further. */
const MAX_FORM_BYTES = 4 * 1024;
const FORM_DEADLINE_MS = 10_000;

/**
 * Scripts, styles, images, fetches and forms from this origin only; no inline script or style,
 * no framing, no plugins, no <base>: an injected tag can neither run nor send anything elsewhere.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const PAGE_HEADERS = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it a browser sends `Origin: null` on the page's own forms, and the origin check needs it.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * The console, served on the admin listener under /console: login (a key → an HttpOnly,
 * SameSite=Strict session cookie, Secure over TLS), the pages, their live readings and their
 * assets. Every page and reading needs a session; every change needs the admin role and the
 * session's CSRF token (x-csrf-token, or the form's `csrf` field), besides SameSite. Returns false
 * for paths it does not serve.
 */
export function consoleHandler(deps: ConsoleDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { sessions, assets } = deps;
  return async (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path === '/' || path === '/console') return redirect(res, '/console/');
    if (!path.startsWith('/console/')) return false;
    if (path.startsWith('/console/assets/')) {
      if (assets.serve(req, res, path)) return true;
      return sendText(res, 404, 'Not found');
    }
    const method = req.method ?? 'GET';
    if (path === '/console/login') {
      if (method === 'GET') return sendHtml(res, 200, loginPage(undefined, assets));
      if (method !== 'POST') return sendText(res, 405, 'Method not allowed');
      if (!sameOrigin(req)) return sendHtml(res, 403, loginPage('This form must be sent from the console itself.', assets));
      const form = await readForm(req);
      const key = form?.get('key') ?? '';
      const role = key === '' ? undefined : deps.credentials.roleOf(key);
      deps.onLogin?.(role, req.socket.remoteAddress);
      if (role === undefined) return sendHtml(res, 401, loginPage('That key is not an admin or viewer key.', assets));
      const { id } = sessions.open(role);
      const secure = req.socket instanceof TLSSocket ? '; Secure' : '';
      res.setHeader('set-cookie', `${SESSION_COOKIE}=${id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${deps.sessionSeconds}${secure}`);
      return redirect(res, '/console/');
    }
    const id = cookie(req, SESSION_COOKIE);
    const session = sessions.get(id);
    if (path === '/console/logout') {
      if (method !== 'POST') return sendText(res, 405, 'Method not allowed');
      const form = await readForm(req);
      if (session === undefined) return redirect(res, '/console/login');
      if (!csrfMatches(req, session, form)) return sendText(res, 403, 'The CSRF token is missing or wrong.');
      sessions.close(id);
      res.setHeader('set-cookie', `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`);
      return redirect(res, '/console/login');
    }
    if (path.startsWith('/console/api/')) {
      if (session === undefined) return sendJson(res, 401, errorBody('authentication_error', 'No console session: log in at /console/login'));
      if (path.startsWith('/console/api/admin/')) {
        // One declaration of each operation: the admin API's own dispatch, behind the session's role and CSRF token.
        if (method !== 'GET') {
          const refusal = changeRefusal(req, session, undefined);
          if (refusal !== undefined) return sendJson(res, 403, errorBody('permission_error', refusal));
        }
        // The path as sent (not normalised: no `..` can move it out of /admin/); the route patterns match it exactly.
        const raw = req.url ?? '';
        const query = raw.indexOf('?');
        const answer = await deps.admin(req, path.slice('/console/api'.length), new URLSearchParams(query < 0 ? '' : raw.slice(query + 1)));
        if (answer === 'too_large') {
          res.setHeader('connection', 'close');
          const tooLarge = adminError(413, `The body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`);
          return sendJson(res, tooLarge.status, tooLarge.body);
        }
        return sendJson(res, answer.status, answer.body);
      }
      if (method !== 'GET' && method !== 'HEAD') {
        const refusal = changeRefusal(req, session, undefined);
        if (refusal !== undefined) return sendJson(res, 403, errorBody('permission_error', refusal));
        return sendJson(res, 404, errorBody('not_found_error', 'No such console action'));
      }
      if (path === '/console/api/live') return sendJson(res, 200, await deps.live.read());
      const reading = deps.readings.get(path.slice('/console/api/'.length));
      if (reading !== undefined) return sendJson(res, 200, await reading());
      return sendJson(res, 404, errorBody('not_found_error', 'No such console reading'));
    }
    const page = PAGES.find((p) => p.path === path);
    if (page === undefined) return sendText(res, 404, 'Not found');
    if (session === undefined) return redirect(res, '/console/login');
    return sendHtml(res, 200, shellPage(page.name, session.role, session.csrf, assets));
  };
}

/** Why a change is refused, or undefined when it may go ahead: admins only, with the session's token. */
export function changeRefusal(req: IncomingMessage, session: ConsoleSession, form: URLSearchParams | undefined): string | undefined {
  if (session.role !== 'admin') return 'The viewer role may look but not change anything.';
  if (!csrfMatches(req, session, form)) return 'The CSRF token is missing or wrong.';
  return undefined;
}

function csrfMatches(req: IncomingMessage, session: ConsoleSession, form: URLSearchParams | undefined): boolean {
  const header = req.headers['x-csrf-token'];
  const presented = typeof header === 'string' ? header : (form?.get('csrf') ?? undefined);
  return presented === session.csrf && sameOrigin(req);
}

/** A browser names the page's origin on every POST: it must be this host (a missing Origin, from non-browser clients, passes). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A urlencoded form body, at most MAX_FORM_BYTES within FORM_DEADLINE_MS; undefined otherwise. */
function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (value: URLSearchParams | undefined): void => {
      clearTimeout(deadline);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.resume();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) finish(undefined);
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const deadline = setTimeout(() => finish(undefined), FORM_DEADLINE_MS);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', () => finish(undefined));
  });
}

function errorBody(type: string, message: string): unknown {
  return { type: 'error', error: { type, message } };
}

function redirect(res: ServerResponse, location: string): true {
  res.writeHead(303, { ...PAGE_HEADERS, location, 'content-length': 0 });
  res.end();
  return true;
}

function sendHtml(res: ServerResponse, status: number, html: string): true {
  const body = Buffer.from(html);
  res.writeHead(status, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-length': body.length });
  res.end(body);
  return true;
}

function sendJson(res: ServerResponse, status: number, value: unknown): true {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { ...PAGE_HEADERS, 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
  return true;
}

function sendText(res: ServerResponse, status: number, text: string): true {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return true;
}
