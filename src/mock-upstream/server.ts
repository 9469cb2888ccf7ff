import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { anthropicErrorBody } from '../errors.js';
import { answerFor, countTokens, PromptCache, validateMessages, type Answer, type MessagesRequest, type Usage } from './answers.js';
import { BatchStore, type BatchRequest } from './batches.js';
import { faultFromHeaders, FaultSchedule, validateFaultPlan, type FaultPlan } from './faults.js';

/**
 * The project's own stand-in for Anthropic's API: the wire format of the real one (JSON and SSE,
 * error shapes, rate-limit headers, absolute batch URLs), deterministic answers, and failure
 * injection. It serves tests, the demo, load tests and docker-compose.
 */

export interface MockUpstreamOptions {
  port?: number;
  host?: string;
  /** Delay before response headers. */
  latencyMs?: number;
  /** Delay between SSE events. */
  eventIntervalMs?: number;
  /** Base of absolute URLs the mock hands out (batch results_url); defaults to its own address. */
  publicUrl?: string;
  /** Awaited before the mock answers each API request (not /_mock/*): tests hold requests open with it. */
  onRequest?: (req: RecordedRequest) => Promise<void> | void;
}

export interface RecordedRequest {
  id: string;
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  receivedAt: number;
}

export interface BilledUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface MockStats {
  requests: number;
  /** Keyed "METHOD /path" (no query). */
  byPath: Record<string, number>;
  /** Usage the mock billed: final usage of completed calls, last reported usage of failed streams. */
  usage: BilledUsage;
  /** Billed usage per model. */
  usageByModel: Record<string, BilledUsage>;
  /** TCP connections accepted. */
  connections: number;
}

export interface MockUpstream {
  readonly url: string;
  /** The most recent API requests (at most 1,000). */
  readonly requests: RecordedRequest[];
  stats(): MockStats;
  reset(): void;
  setFaults(plan: FaultPlan | null): void;
  close(): Promise<void>;
}

const MAX_RECORDED = 1_000;
const MAX_BODY = 64 * 1024 * 1024;
export const MOCK_MODELS = [
  { id: 'claude-opus-5', display_name: 'Claude Opus 5', created_at: '2026-09-01T00:00:00Z' },
  { id: 'claude-sonnet-5', display_name: 'Claude Sonnet 5', created_at: '2026-08-01T00:00:00Z' },
  { id: 'claude-haiku-5-5', display_name: 'Claude Haiku 5.5', created_at: '2026-07-01T00:00:00Z' },
  { id: 'claude-sonnet-4-5', display_name: 'Claude Sonnet 4.5', created_at: '2025-09-29T00:00:00Z' },
].map((m) => ({ type: 'model' as const, ...m }));

const delay = (ms: number): Promise<void> => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

function emptyUsage(): BilledUsage {
  return { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function createMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const host = options.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const faults = new FaultSchedule();
  const promptCache = new PromptCache();
  const batches = new BatchStore();
  let counter = 0;
  let stats: MockStats = { requests: 0, byPath: {}, usage: emptyUsage(), usageByModel: {}, connections: 0 };
  let publicUrl = options.publicUrl;

  const bill = (model: string, usage: Pick<Usage, keyof BilledUsage>): void => {
    const perModel = (stats.usageByModel[model] ??= emptyUsage());
    for (const key of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const) {
      stats.usage[key] += usage[key];
      perModel[key] += usage[key];
    }
  };

  const commonHeaders = (requestId: string): Record<string, string> => ({
    'request-id': requestId,
    'anthropic-organization-id': 'org_mock',
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-requests-reset': '2026-01-01T00:00:00Z',
    'anthropic-ratelimit-tokens-limit': '2000000',
    'anthropic-ratelimit-tokens-remaining': '1999000',
    'anthropic-ratelimit-tokens-reset': '2026-01-01T00:00:00Z',
  });

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string>, gzip = false): void => {
    const json = Buffer.from(JSON.stringify(body));
    const payload = gzip ? gzipSync(json) : json;
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': String(payload.length),
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(payload);
  };

  const sendError = (res: ServerResponse, status: number, message: string, headers: Record<string, string>, retryAfter?: string): void => {
    const extra: Record<string, string> = {};
    if (retryAfter !== undefined) extra['retry-after'] = retryAfter;
    else if (status === 429 || status === 529 || status === 503) extra['retry-after'] = '1';
    sendJson(res, status, anthropicErrorBody(status, message, headers['request-id']), { ...headers, ...extra });
  };

  const writeEvent = async (res: ServerResponse, name: string, data: unknown): Promise<boolean> => {
    if (res.destroyed) return false;
    if (!res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
    return !res.destroyed;
  };

  const stream = async (res: ServerResponse, req: MessagesRequest, answer: Answer, headers: Record<string, string>, fault: FaultPlan, interval: number): Promise<void> => {
    const startUsage = { ...answer.usage, output_tokens: 1 };
    let billed: Pick<Usage, keyof BilledUsage> = startUsage;
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const events: [string, unknown][] = [
      ['message_start', { type: 'message_start', message: { id: answer.id, type: 'message', role: 'assistant', model: req.model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage } }],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['ping', { type: 'ping' }],
      ...answer.pieces.map((text): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }]),
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', {
        type: 'message_delta',
        delta: { stop_reason: answer.stopReason, stop_sequence: null },
        usage: {
          input_tokens: answer.usage.input_tokens,
          cache_creation_input_tokens: answer.usage.cache_creation_input_tokens,
          cache_read_input_tokens: answer.usage.cache_read_input_tokens,
          output_tokens: answer.usage.output_tokens,
        },
      }],
      ['message_stop', { type: 'message_stop' }],
    ];
    // Faults strike after message_start and two more events.
    const strikeAt = Math.min(3, events.length - 2);
    try {
      for (let i = 0; i < events.length; i++) {
        const [name, data] = events[i] as [string, unknown];
        if (i > 0) await delay(interval);
        if (i === strikeAt && fault.kind === 'midstream-error') {
          await writeEvent(res, 'error', anthropicErrorBody(529, 'Overloaded'));
          res.end();
          return;
        }
        if (i === strikeAt && fault.kind === 'midstream-reset') {
          res.destroy();
          return;
        }
        if (i === 1 && fault.kind === 'stall-body') return; // headers and message_start sent; nothing more until the client gives up
        if (!(await writeEvent(res, name, data))) return;
        if (name === 'message_delta') billed = answer.usage;
      }
      res.end();
    } finally {
      bill(req.model, billed);
    }
  };

  const handleMessages = async (res: ServerResponse, raw: string, headers: Record<string, string>, fault: FaultPlan, interval: number): Promise<void> => {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      sendError(res, 400, 'Request body is not valid JSON', headers);
      return;
    }
    const problem = validateMessages(body);
    if (problem !== undefined) {
      sendError(res, 400, problem, headers);
      return;
    }
    const req = body as MessagesRequest;
    const answer = answerFor(req, promptCache);
    if (req.stream === true) {
      await stream(res, req, answer, headers, fault, interval);
      return;
    }
    bill(req.model, answer.usage);
    sendJson(res, 200, {
      id: answer.id,
      type: 'message',
      role: 'assistant',
      model: req.model,
      content: [{ type: 'text', text: answer.pieces.join('') }],
      stop_reason: answer.stopReason,
      stop_sequence: null,
      usage: answer.usage,
    }, headers, fault.kind === 'gzip');
  };

  const handleModels = (res: ServerResponse, url: URL, headers: Record<string, string>): void => {
    const id = url.pathname.slice('/v1/models/'.length);
    if (url.pathname.startsWith('/v1/models/')) {
      const model = MOCK_MODELS.find((m) => m.id === id);
      if (model === undefined) sendError(res, 404, `model: ${id}`, headers);
      else sendJson(res, 200, model, headers);
      return;
    }
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? '20') || 20, 1), 1000);
    const after = url.searchParams.get('after_id');
    const before = url.searchParams.get('before_id');
    let start = 0;
    let end = MOCK_MODELS.length;
    if (after !== null) start = MOCK_MODELS.findIndex((m) => m.id === after) + 1;
    if (before !== null) end = Math.max(0, MOCK_MODELS.findIndex((m) => m.id === before));
    const data = before !== null ? MOCK_MODELS.slice(Math.max(start, end - limit), end) : MOCK_MODELS.slice(start, Math.min(end, start + limit));
    const hasMore = before !== null ? end - limit > start : start + limit < end;
    sendJson(res, 200, { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null }, headers);
  };

  const handleBatches = (res: ServerResponse, method: string, url: URL, raw: string, headers: Record<string, string>): void => {
    const parts = url.pathname.split('/').filter((p) => p !== ''); // v1 messages batches [id] [action]
    const id = parts[3];
    const action = parts[4];
    const base = publicUrl ?? '';
    if (id === undefined) {
      if (method === 'POST') {
        let body: { requests?: unknown };
        try {
          body = JSON.parse(raw) as { requests?: unknown };
        } catch {
          sendError(res, 400, 'Request body is not valid JSON', headers);
          return;
        }
        if (!Array.isArray(body.requests) || body.requests.length === 0) {
          sendError(res, 400, 'requests: at least one request is required', headers);
          return;
        }
        sendJson(res, 200, batches.create(body.requests as BatchRequest[]), headers);
      } else if (method === 'GET') {
        const data = batches.list();
        sendJson(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null }, headers);
      } else sendError(res, 405, `Method ${method} not allowed`, headers);
      return;
    }
    if (action === undefined && method === 'GET') {
      const batch = batches.retrieve(id, base);
      if (batch === undefined) sendError(res, 404, `batch ${id} not found`, headers);
      else sendJson(res, 200, batch, headers);
      return;
    }
    if (action === undefined && method === 'DELETE') {
      if (!batches.delete(id)) sendError(res, 404, `batch ${id} not found`, headers);
      else sendJson(res, 200, { id, type: 'message_batch_deleted' }, headers);
      return;
    }
    if (action === 'cancel' && method === 'POST') {
      const batch = batches.cancel(id);
      if (batch === undefined) sendError(res, 404, `batch ${id} not found`, headers);
      else sendJson(res, 200, batch, headers);
      return;
    }
    if (action === 'results' && method === 'GET') {
      const stored = batches.get(id);
      if (stored?.batch.processing_status !== 'ended') {
        sendError(res, stored === undefined ? 404 : 400, `batch ${id} has no results yet`, headers);
        return;
      }
      const lines = stored.requests.map((r) => {
        const params = r.params as MessagesRequest;
        const answer = answerFor(params, promptCache);
        const message = { id: answer.id, type: 'message', role: 'assistant', model: params.model, content: [{ type: 'text', text: answer.pieces.join('') }], stop_reason: answer.stopReason, stop_sequence: null, usage: answer.usage };
        return JSON.stringify({ custom_id: r.custom_id, result: { type: 'succeeded', message } });
      });
      const payload = Buffer.from(lines.join('\n') + '\n');
      res.writeHead(200, { ...headers, 'content-type': 'application/binary', 'content-length': String(payload.length) });
      res.end(payload);
      return;
    }
    sendError(res, 404, `Not found: ${method} ${url.pathname}`, headers);
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (path === '/_mock/stats' && req.method === 'GET') {
      sendJson(res, 200, stats, {});
    } else if (path === '/_mock/reset' && req.method === 'POST') {
      api.reset();
      sendJson(res, 200, { ok: true }, {});
    } else if (path === '/_mock/faults' && req.method === 'POST') {
      let plan: unknown;
      try {
        plan = JSON.parse((await readBody(req)) || 'null');
      } catch {
        sendJson(res, 400, { error: 'fault plan must be JSON' }, {});
        return;
      }
      const checked = validateFaultPlan(plan);
      if (typeof checked === 'string') sendJson(res, 400, { error: checked }, {});
      else {
        faults.set(checked);
        sendJson(res, 200, { ok: true, plan: checked }, {});
      }
    } else if (path === '/_mock/requests' && req.method === 'GET') {
      sendJson(res, 200, requests.map(({ body: _body, ...rest }) => rest), {});
    } else {
      sendJson(res, 404, { error: 'unknown control endpoint' }, {});
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (url.pathname.startsWith('/_mock/')) {
      await handleControl(req, res, url.pathname);
      return;
    }
    const raw = await readBody(req);
    counter++;
    const requestId = `req_mock_${String(counter).padStart(10, '0')}`;
    const recorded: RecordedRequest = { id: requestId, method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers }, body: raw, receivedAt: Date.now() };
    requests.push(recorded);
    if (requests.length > MAX_RECORDED) requests.shift();
    stats.requests++;
    const routeKey = `${recorded.method} ${url.pathname}`;
    stats.byPath[routeKey] = (stats.byPath[routeKey] ?? 0) + 1;

    const headerFault = faultFromHeaders(req.headers);
    const globalFault = faults.next();
    const fault: FaultPlan = { ...globalFault, ...headerFault };
    await options.onRequest?.(recorded);
    await delay(fault.latencyMs ?? options.latencyMs ?? 0);
    if (res.destroyed) return;

    if (fault.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault.kind === 'stall') return; // never answers; close() or the client ends it
    const headers = commonHeaders(requestId);
    if (fault.status !== undefined) {
      sendError(res, fault.status, fault.status === 529 ? 'Overloaded' : `Injected failure (${fault.status})`, headers, fault.retryAfter);
      return;
    }
    const auth = req.headers.authorization;
    const key = req.headers['x-api-key'] ?? (typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : undefined);
    if (key === undefined || key === '' || key === 'sk-ant-invalid') {
      sendError(res, 401, 'invalid x-api-key', headers);
      return;
    }
    if (req.headers['anthropic-version'] === undefined) {
      sendError(res, 400, 'anthropic-version: header is required', headers);
      return;
    }
    const method = recorded.method;
    const path = url.pathname;
    const interval = fault.eventIntervalMs ?? options.eventIntervalMs ?? 0;
    if (path === '/v1/messages') {
      if (method !== 'POST') sendError(res, 405, `Method ${method} not allowed`, headers);
      else await handleMessages(res, raw, headers, fault, interval);
    } else if (path === '/v1/messages/count_tokens') {
      if (method !== 'POST') {
        sendError(res, 405, `Method ${method} not allowed`, headers);
        return;
      }
      let body: { system?: unknown; messages?: unknown[] };
      try {
        body = JSON.parse(raw) as typeof body;
      } catch {
        sendError(res, 400, 'Request body is not valid JSON', headers);
        return;
      }
      if (!Array.isArray(body.messages)) sendError(res, 400, 'messages: Field required', headers);
      else sendJson(res, 200, { input_tokens: countTokens(body) }, headers);
    } else if (path === '/v1/models' || path.startsWith('/v1/models/')) {
      if (method !== 'GET') sendError(res, 405, `Method ${method} not allowed`, headers);
      else handleModels(res, url, headers);
    } else if (path.startsWith('/v1/messages/batches')) {
      handleBatches(res, method, url, raw, headers);
    } else {
      sendError(res, 404, `Not found: ${method} ${path}`, headers);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, anthropicErrorBody(500, `mock failure: ${String(err)}`), {});
      else res.destroy();
    });
  });
  server.on('connection', () => {
    stats.connections++;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  publicUrl ??= url;

  const api: MockUpstream = {
    url,
    requests,
    stats: () => structuredClone(stats),
    reset: () => {
      requests.length = 0;
      stats = { requests: 0, byPath: {}, usage: emptyUsage(), usageByModel: {}, connections: 0 };
      faults.set(null);
      promptCache.clear();
      batches.clear();
    },
    setFaults: (plan) => faults.set(plan),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
