import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createSecureServer as createSecureH2Server,
  createServer as createH2cServer,
  Http2ServerResponse,
  type Http2ServerRequest,
  type ServerHttp2Session,
} from 'node:http2';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { errorBody } from './error-body.js';
import { countTokens, validateCountTokens } from './answers.js';
import { PromptCache } from './prompt-cache.js';
import { BatchStore } from './batches.js';
import { faultFromHeaders, FaultSchedule, validateFaultPlan, type FaultPlan } from './faults.js';
import { estimatedTokens, KeyBudgets } from './key-budget.js';
import { parseScript, ScriptPlayer, validateScript, type MockScript } from './script.js';
import { Reply } from './reply.js';
import { bedrockFraming, vertexFraming } from './provider-framing.js';
import { ProviderMock, type BedrockMockOptions, type MockKind, type VertexMockOptions } from './providers.js';
import type { MockState } from './api-call.js';
import { dispatch } from './routes.js';
import { StatsRecorder, type MockStats } from './stats.js';
import { listenOutsideEphemeralRange } from './stable-port.js';

/**
 * The project's own stand-in for Anthropic's API: the real wire format (JSON and SSE, error shapes,
 * rate-limit headers, absolute batch URLs), deterministic answers, and failure injection. It serves
 * tests, the demo, load tests and docker-compose. All memory it keeps is bounded.
 */

export interface MockUpstreamOptions {
  /**
   * Default 0: a free port below the kernel's ephemeral range, so that nothing else is handed it
   * while a script keeps the mock down (stable-port.ts; an ephemeral one where the range is unknown).
   */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Delay before response headers. Default 0. */
  latencyMs?: number;
  /** Delay between SSE events. Default 0. */
  eventIntervalMs?: number;
  /** Base of absolute URLs the mock hands out (batch results_url). Default: its own url. */
  publicUrl?: string;
  /** Awaited before the mock answers each API request (not /_mock/*): tests hold requests open with it. */
  onRequest?: (req: RecordedRequest) => Promise<void> | void;
  /**
   * Also speak HTTP/2 with prior knowledge (h2c) on the same port: a connection that opens with the
   * HTTP/2 preface goes to node:http2, any other to node:http. Default false (HTTP/1.1 only).
   */
  http2?: boolean;
  /**
   * Serve https with this key and certificate (PEM). With `http2` too, ALPN picks h2 or HTTP/1.1 as
   * the real API does; without it, HTTP/1.1 only (for testing clients that require h2).
   */
  tls?: { key: string; cert: string };
  /** A failure script to play from start-up (script.ts): the object form or the shorthand. Invalid: createMockUpstream rejects. */
  script?: MockScript | string;
  /**
   * Also serve the control plane (/_mock/*) on this port (0 = ephemeral), so a mock whose script
   * took it down (not listening on its API port) can still be told to come back.
   */
  controlPort?: number;
  /**
   * Which service to imitate: Anthropic's API (default), Amazon Bedrock (SigV4 or bearer auth,
   * /model/{id}/invoke..., binary event streams) or Google Vertex AI (OAuth bearer, :rawPredict...).
   */
  kind?: MockKind;
  bedrock?: BedrockMockOptions;
  vertex?: VertexMockOptions;
  /** The prompt cache's bound (prefixes kept, default 10,000) and clock (default Date.now; tests move time). */
  promptCache?: { capacity?: number; now?: () => number };
}

export interface RecordedRequest {
  /** The request-id the mock answers with. */
  id: string;
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  receivedAt: number;
}

export interface MockUpstream {
  readonly url: string;
  /** The control-only listener's url, when `controlPort` was given. */
  readonly controlUrl: string | undefined;
  /** The most recent API requests, oldest first (at most 1,000). */
  readonly requests: RecordedRequest[];
  stats(): MockStats;
  /** Clears recorded requests, stats, the fault plan, the failure script, the prompt-cache memory and batches. */
  reset(): void;
  /** Installs (or with null clears) the global fault plan. */
  setFaults(plan: FaultPlan | null): void;
  /**
   * Plays a failure script from now (null: healthy, no rate limit). Resolves once the API port
   * listens or refuses as the script's first step says; rejects on an invalid script.
   */
  setScript(script: MockScript | string | null): Promise<void>;
  /** True while a script keeps the API port closed. */
  isDown(): boolean;
  /** Rejects every AWS credential and Google token the mock issued so far, as expired (new ones work). */
  expireCredentials(): void;
  /** Closes the server and every open connection, stalled ones included. */
  close(): Promise<void>;
}

const MAX_RECORDED = 1_000;
/** The API's request size limit for Messages: larger bodies get 413 request_too_large. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const TEST_INVALID_KEY = 'sk-ant-invalid';

interface ReadBody {
  text: string;
  tooLarge: boolean;
}

function readBody(req: IncomingMessage): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve({ text: total <= MAX_BODY_BYTES ? Buffer.concat(chunks).toString('utf8') : '', tooLarge: total > MAX_BODY_BYTES }));
    req.on('error', reject);
  });
}

/** The credential from x-api-key or Authorization: Bearer, if any. */
function apiKey(headers: IncomingHttpHeaders): string | undefined {
  const key = headers['x-api-key'];
  if (typeof key === 'string' && key.trim() !== '') return key.trim();
  const auth = headers.authorization;
  const bearer = typeof auth === 'string' ? /^bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return bearer?.[1];
}

/** JSON answers of the control plane (/_mock/*): no API headers, never counted. */
function controlJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(payload.length) });
  res.end(payload);
}

/** The first bytes of every prior-knowledge HTTP/2 connection (RFC 9113, 3.4). */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * The mock's handlers are written against node:http; HTTP/2's compatibility API has the same shape
 * except `destroyed` (read from the stream here). Casts are confined to this adapter.
 */
function asHttp1(req: Http2ServerRequest, res: Http2ServerResponse): [IncomingMessage, ServerResponse] {
  Object.defineProperty(res, 'destroyed', { get: () => res.stream.destroyed });
  return [req as unknown as IncomingMessage, res as unknown as ServerResponse];
}

export async function createMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const host = options.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const faults = new FaultSchedule();
  const stats = new StatsRecorder();
  const promptCache = new PromptCache(options.promptCache?.capacity, options.promptCache?.now);
  const batches = new BatchStore();
  const kind = options.kind ?? 'anthropic';
  const provider = new ProviderMock(kind, options.bedrock, options.vertex);
  /** Pending sleeps, so close() can end them at once. */
  const sleeps = new Set<() => void>();
  let closed = false;
  let counter = 0;
  /** The script being played and the per-key budgets it set; null when healthy. */
  let player: ScriptPlayer | null = null;
  let budgets: KeyBudgets | null = null;

  const sleep = (ms: number): Promise<void> => {
    if (ms <= 0 || closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        sleeps.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleeps.add(done);
    });
  };

  const reset = (): void => {
    requests.length = 0;
    stats.reset();
    faults.set(null);
    promptCache.clear();
    batches.clear();
    void installScript(null).catch(() => undefined); // a listen failure shows in GET /_mock/script
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, path: string, viaControlPort = false): Promise<void> => {
    const method = req.method ?? 'GET';
    const routes: Record<string, string[]> = {
      '/_mock/stats': ['GET'],
      '/_mock/reset': ['POST'],
      '/_mock/faults': ['GET', 'POST'],
      '/_mock/requests': ['GET'],
      '/_mock/script': ['GET', 'POST'],
      '/_mock/aws/credentials': ['GET'],
      '/_mock/google/token': ['POST'],
      '/_mock/expire-credentials': ['POST'],
    };
    const allowed = routes[path];
    if (allowed === undefined) {
      controlJson(res, 404, errorBody(404, `Unknown control endpoint ${path}`));
      return;
    }
    if (!allowed.includes(method)) {
      controlJson(res, 405, errorBody(405, `Method ${method} is not allowed for ${path}`));
      return;
    }
    const { text } = await readBody(req);
    if (path === '/_mock/aws/credentials') {
      // The AWS_CONTAINER_CREDENTIALS_FULL_URI contract: fresh temporary credentials on every call.
      controlJson(res, 200, provider.issueAwsCredentials());
    } else if (path === '/_mock/google/token') {
      // A Google STS token exchange (external_account credentials' token_url): a subject token in, an access token out.
      const form = new URLSearchParams(text);
      if ((form.get('subject_token') ?? '') === '' || form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange') {
        controlJson(res, 400, { error: 'invalid_request', error_description: 'subject_token and the token-exchange grant_type are required' });
      } else controlJson(res, 200, provider.issueGoogleToken());
    } else if (path === '/_mock/expire-credentials') {
      provider.expireIssued();
      controlJson(res, 200, { ok: true });
    } else if (path === '/_mock/stats') {
      controlJson(res, 200, stats.snapshot());
    } else if (path === '/_mock/reset') {
      reset();
      controlJson(res, 200, { ok: true });
    } else if (path === '/_mock/requests') {
      controlJson(res, 200, requests.map(({ body: _body, ...rest }) => rest));
    } else if (path === '/_mock/script') {
      await scriptControl(res, method, text, viaControlPort);
    } else if (method === 'GET') {
      controlJson(res, 200, { plan: faults.current() });
    } else {
      let plan: unknown;
      try {
        plan = JSON.parse(text.trim() === '' ? 'null' : text);
      } catch {
        controlJson(res, 400, errorBody(400, 'fault plan must be JSON (an object or null)'));
        return;
      }
      const checked = validateFaultPlan(plan);
      if (typeof checked === 'string') {
        controlJson(res, 400, errorBody(400, checked));
        return;
      }
      faults.set(checked);
      controlJson(res, 200, { ok: true, plan: checked });
    }
  };

  /** GET: the script and where it is; POST: a new script (JSON object, JSON string or plain shorthand; null or empty: healthy). */
  const scriptControl = async (res: ServerResponse, method: string, text: string, viaControlPort: boolean): Promise<void> => {
    if (method === 'GET') {
      controlJson(res, 200, { script: player?.script ?? null, ...(player?.position() ?? { step: null, down: false }), listening, ...(lastListenError === undefined ? {} : { listenError: lastListenError }), keys: budgets?.snapshot() ?? {} });
      return;
    }
    let value: unknown = text.trim();
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed === 'string' || typeof parsed === 'object') value = parsed;
    } catch {
      // not JSON: the plain shorthand (curl -d 'down:5s')
    }
    const checked = value === null || value === '' ? null : typeof value === 'string' ? parseScript(value) : validateScript(value);
    if (typeof checked === 'string') {
      controlJson(res, 400, errorBody(400, checked));
      return;
    }
    if (viaControlPort) {
      await installScript(checked);
      controlJson(res, 200, { ok: true, script: checked });
      return;
    }
    // Over the API port: answer first (this connection closes with the port when the script takes it down).
    res.setHeader('connection', 'close');
    res.once('finish', () => void installScript(checked).catch(() => undefined)); // a listen failure shows in GET /_mock/script
    controlJson(res, 200, { ok: true, script: checked });
  };

  // publicUrl is set once the server listens (it defaults to the bound address).
  const state: MockState = { promptCache, batches, publicUrl: '', bill: (model, usage) => stats.bill(model, usage) };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const { text, tooLarge } = await readBody(req);
    counter++;
    const recorded: RecordedRequest = {
      id: `req_mock_${String(counter).padStart(12, '0')}`,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: { ...req.headers },
      body: text,
      receivedAt: Date.now(),
    };
    requests.push(recorded);
    if (requests.length > MAX_RECORDED) requests.shift();
    stats.request(recorded.method, url.pathname);
    const scripted = player?.take() ?? { down: false, fault: {} };
    if (scripted.down) {
      // Reached a port that is closing (the script just took it down): end it like a refusal would.
      req.socket.destroy();
      return;
    }
    const fault: FaultPlan = { ...faults.next(), ...scripted.fault, ...faultFromHeaders(req.headers) };

    await options.onRequest?.(recorded);
    await sleep(fault.latencyMs ?? options.latencyMs ?? 0);
    if (res.destroyed || closed) return;
    if (fault.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault.kind === 'stall') return; // no answer: the client gives up, or close() ends the connection

    const key = apiKey(req.headers);
    // The API checks the key before the rate limit; an invalid key is never charged.
    const budget = key === undefined || key === TEST_INVALID_KEY || budgets === null ? undefined : budgets.charge(key, estimatedTokens(Buffer.byteLength(text)));
    const echo = req.headers['x-mock-echo-headers'];
    const framing = kind === 'bedrock' ? bedrockFraming(provider.streamFault(req.headers) ?? fault.bedrockFault) : kind === 'vertex' ? vertexFraming() : undefined;
    const reply = new Reply(res, {
      ...(budget === undefined ? {} : { headers: budget.headers }),
      ...(framing === undefined ? {} : { framing }),
      requestId: recorded.id,
      ...(fault.kind === undefined ? {} : { fault: fault.kind }),
      ...(fault.retryAfter === undefined ? {} : { retryAfter: fault.retryAfter }),
      ...(echo === '1' || echo === 'true' ? { echo: recorded.headers } : {}),
      streams: { opened: () => stats.streamOpened(), closed: () => stats.streamClosed() },
    });
    if (tooLarge) {
      reply.error(413, `Request exceeds the maximum size of ${MAX_BODY_BYTES} bytes`);
      return;
    }
    if (fault.status !== undefined) {
      reply.error(fault.status, fault.status === 529 || fault.status === 503 ? 'Overloaded' : `Injected failure (status ${fault.status})`);
      return;
    }
    if (kind !== 'anthropic') {
      const refused = await provider.authenticate(recorded.method, url.pathname, req.headers, text, recorded.id);
      if (refused !== undefined) {
        reply.bytes(refused.status, 'application/json', refused.body, refused.headers);
        return;
      }
      const translated = provider.translate(recorded.method, url.pathname, text);
      if (!translated.ok) {
        reply.error(translated.status, translated.message);
        return;
      }
      if (translated.bedrockCountTokens) {
        const counted = JSON.parse(translated.body) as unknown;
        const problem = validateCountTokens(counted);
        if (problem !== undefined) reply.error(400, problem);
        else reply.json(200, { inputTokens: countTokens(counted as { messages: unknown[] }) });
        return;
      }
      await dispatch({
        method: recorded.method,
        url: new URL(translated.path, 'http://mock.invalid'),
        body: translated.body,
        reply,
        fault,
        eventIntervalMs: fault.eventIntervalMs ?? options.eventIntervalMs ?? 0,
        state,
        cacheScope: provider.cacheScope(),
        sleep,
      });
      return;
    }
    if (key === undefined) {
      reply.error(401, 'x-api-key header is required');
      return;
    }
    if (key === TEST_INVALID_KEY) {
      reply.error(401, 'invalid x-api-key');
      return;
    }
    if (req.headers['anthropic-version'] === undefined) {
      reply.error(400, 'anthropic-version: header is required');
      return;
    }
    if (budget?.limitedForS !== undefined) {
      reply.error(429, 'Number of requests has exceeded your rate limit for this API key (mock script rate-limit)', { 'retry-after': String(budget.limitedForS) });
      return;
    }
    await dispatch({
      method: recorded.method,
      url,
      body: text,
      reply,
      fault,
      eventIntervalMs: fault.eventIntervalMs ?? options.eventIntervalMs ?? 0,
      state,
      // Caches are per organization: one per API key here (the key itself only seeds the prefix hashes).
      cacheScope: `key:${key}`,
      sleep,
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://mock.invalid');
    const api = !url.pathname.startsWith('/_mock/');
    if (api) {
      stats.requestOpened();
      res.once('close', () => stats.requestClosed());
    }
    const handled = api ? handleApi(req, res, url) : handleControl(req, res, url.pathname);
    handled.catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else controlJson(res, 500, errorBody(500, `mock failure: ${err instanceof Error ? err.message : String(err)}`));
    });
  };
  const sessions = new Set<ServerHttp2Session>();
  /** Every TCP connection, so close() can end all of them (stalled ones and h2 sessions included). */
  const raw = new Set<Socket>();
  const trackSession = (session: ServerHttp2Session): void => {
    stats.http2Connection();
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  };
  // Handlers see node:http's request and response; HTTP/2 ones are adapted (HTTP/1.1 over TLS needs nothing).
  const onAnyRequest = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    if (res instanceof Http2ServerResponse) onRequest(...asHttp1(req as Http2ServerRequest, res));
    else onRequest(req as IncomingMessage, res);
  };
  const server = createServer(onRequest);
  let listener: TcpServer = server;
  /** The control-only listener (options.controlPort). */
  let controlServer: ReturnType<typeof createServer> | undefined;
  const controlSockets = new Set<Socket>();
  /** Whether the API port accepts connections; changed only inside `transition`. */
  let listening = false;
  /** Listening changes run one after another, so a quick down-up-down never overlaps. */
  let transition: Promise<void> = Promise.resolve();
  /** Wakes the script when a timed step ends (a down mock receives nothing that could). */
  let wakeTimer: NodeJS.Timeout | undefined;
  let lastListenError: string | undefined;

  const stopListening = (): Promise<void> =>
    new Promise<void>((resolve) => {
      listener.close(() => resolve());
      server.closeAllConnections();
      for (const session of sessions) session.destroy();
      for (const socket of raw) socket.destroy();
    });

  const startListening = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });

  /** Makes the API port follow the script (down: closed; otherwise listening), then sets the wake-up timer. */
  const syncListening = (): Promise<void> => {
    transition = transition.then(async () => {
      if (closed) return;
      const want = !(player?.isDown() ?? false);
      if (want !== listening) {
        if (want) {
          try {
            await startListening();
            listening = true;
            lastListenError = undefined;
          } catch (err) {
            // The port was taken while down: stay down, say why (GET /_mock/script), try again at the next change.
            lastListenError = err instanceof Error ? err.message : String(err);
          }
        } else {
          listening = false;
          await stopListening();
        }
      }
      clearTimeout(wakeTimer);
      const at = player?.nextChangeAt();
      if (at !== undefined && closing === undefined) wakeTimer = setTimeout(() => void syncListening(), Math.max(0, at - Date.now()));
    });
    return transition;
  };

  const installScript = async (script: MockScript | string | null): Promise<void> => {
    const checked = script === null ? null : typeof script === 'string' ? parseScript(script) : validateScript(script);
    if (typeof checked === 'string') throw new Error(`invalid mock script: ${checked}`);
    player = checked === null ? null : new ScriptPlayer(checked);
    budgets = checked?.rateLimit === undefined ? null : new KeyBudgets(checked.rateLimit);
    await syncListening();
    if (lastListenError !== undefined) throw new Error(`mock cannot listen again on port ${port}: ${lastListenError}`);
  };

  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      clearTimeout(wakeTimer);
      for (const wake of [...sleeps]) wake();
      await transition;
      const control = controlServer;
      await Promise.all([
        listening ? stopListening() : Promise.resolve(),
        control === undefined
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              control.close(() => resolve());
              for (const socket of controlSockets) socket.destroy();
            }),
      ]);
      listening = false;
    })();
    return closing;
  };
  if (options.tls !== undefined && options.http2 === true) {
    // HTTP/2 and HTTP/1.1 chosen by ALPN, as the real API does.
    const secure = createSecureH2Server({ key: options.tls.key, cert: options.tls.cert, allowHTTP1: true }, onAnyRequest);
    secure.on('session', trackSession);
    listener = secure;
  } else if (options.tls !== undefined) {
    listener = createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, onRequest);
  } else if (options.http2 === true) {
    const h2 = createH2cServer(onAnyRequest);
    h2.on('session', trackSession);
    // Both protocols on one port: the first bytes of a connection tell which one it speaks.
    listener = createTcpServer((socket: Socket) => {
      socket.once('data', (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        // No HTTP/1.1 method starts like the preface, so a preface split across reads is still recognised.
        const head = first.subarray(0, H2_PREFACE.length);
        if (head.equals(H2_PREFACE.subarray(0, head.length))) {
          h2.emit('connection', socket); // the session takes the socket over, buffered preface included
        } else {
          server.emit('connection', socket);
          socket.resume(); // node:http reads in flowing mode
        }
      });
    });
  }
  listener.on('connection', (socket: Socket) => {
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
  });
  listener.on('connection', () => stats.connection());
  if ((options.port ?? 0) === 0) {
    // Any mock can be taken down and brought back (a script): it keeps a port nobody else is handed meanwhile.
    await listenOutsideEphemeralRange(listener, host);
  } else {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(options.port ?? 0, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  }
  const port = (listener.address() as AddressInfo).port;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  state.publicUrl = (options.publicUrl ?? url).replace(/\/+$/, '');
  listening = true;

  if (options.controlPort !== undefined) {
    controlServer = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://mock.invalid').pathname;
      const handled = path.startsWith('/_mock/') ? handleControl(req, res, path, true) : Promise.resolve(controlJson(res, 404, errorBody(404, 'the control port serves /_mock/* only')));
      handled.catch((err: unknown) => controlJson(res, 500, errorBody(500, `mock failure: ${err instanceof Error ? err.message : String(err)}`)));
    });
    const control = controlServer;
    control.on('connection', (socket: Socket) => {
      controlSockets.add(socket);
      socket.once('close', () => controlSockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen(options.controlPort, host, () => {
        control.off('error', reject);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      throw err;
    });
  }
  const controlAddress = controlServer?.address() as AddressInfo | undefined;
  const controlUrl = controlAddress === undefined ? undefined : `http://${host.includes(':') ? `[${host}]` : host}:${controlAddress.port}`;
  if (options.script !== undefined) {
    try {
      await installScript(options.script);
    } catch (err) {
      await closeAll();
      throw err;
    }
  }

  return {
    url,
    controlUrl,
    requests,
    stats: () => stats.snapshot(),
    reset,
    setFaults: (plan) => faults.set(plan),
    expireCredentials: () => provider.expireIssued(),
    setScript: installScript,
    isDown: () => !listening,
    close: closeAll,
  };
}
