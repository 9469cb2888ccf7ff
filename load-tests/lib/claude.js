// @ts-check
/**
 * Shared helpers for the k6 load tests: configuration from `-e` / environment variables,
 * Anthropic-style headers and bodies, one function per gateway endpoint, and response checks.
 * Only k6 APIs are used (no Node built-ins) and only ES2017 syntax (no `??`, `?.`, object spread,
 * numeric separators, `catch {}` without a binding): k6 up to 0.52 parses scripts with a Babel
 * that rejects later syntax, and k6 runs these files as they are. ESLint enforces the syntax
 * level (`ecmaVersion: 2017` for load-tests/), TypeScript checks the types (`checkJs`).
 */
import http from 'k6/http';
import { check } from './metrics.js';

/** @typedef {import('k6/http').RefinedResponse<'text'>} Res */
/** @typedef {import('k6/http').RefinedParams<'text'>} Params */
/** @typedef {{ [name: string]: string }} Headers */

/**
 * A value from `-e NAME=...` or the environment, or the default.
 * @param {string} name
 * @param {string} fallback
 * @returns {string}
 */
export function env(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : v;
}

/**
 * A numeric variable; the default when unset or not a number.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envNumber(name, fallback) {
  const n = Number(env(name, String(fallback)));
  return Number.isFinite(n) ? n : fallback;
}

/**
 * A duration in whole seconds from the environment, clamped to [min, max], as k6 writes it ('30s').
 * @param {string} name
 * @param {number} fallbackS
 * @param {number} [minS]
 * @param {number} [maxS]
 * @returns {string}
 */
export function envSeconds(name, fallbackS, minS, maxS) {
  const lo = minS === undefined ? 1 : minS;
  const hi = maxS === undefined ? 86400 : maxS;
  return `${Math.min(Math.max(Math.round(envNumber(name, fallbackS)), lo), hi)}s`;
}

/**
 * `a` unless it is undefined (ES2017 has no `??`).
 * @template T
 * @param {T | undefined} a
 * @param {T} b
 * @returns {T}
 */
export function orElse(a, b) {
  return a === undefined ? b : a;
}

/** The gateway under test, without a trailing slash. */
export const GATEWAY_URL = env('GATEWAY_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
/** The mock Anthropic API behind the gateway (its `/_mock/*` control endpoints need no auth). */
export const MOCK_URL = env('MOCK_URL', 'http://127.0.0.1:4010').replace(/\/+$/, '');
/** Credential sent as `x-api-key` (any value works against the mock without GATEWAY_API_KEYS). */
export const API_KEY = env('API_KEY', 'k6-load-test');
export const MODEL = env('MODEL', 'claude-sonnet-5');
export const ANTHROPIC_VERSION = '2023-06-01';
export const MAX_TOKENS = envNumber('MAX_TOKENS', 64);

/**
 * @typedef {object} CallOptions
 * @property {string} [apiKey] credential for `x-api-key` (default API_KEY)
 * @property {string} [mode] `x-gateway-mode` label for gateway metrics
 * @property {Headers} [headers] extra request headers (e.g. `x-mock-latency-ms`)
 * @property {Headers} [tags] k6 metric tags for this request
 * @property {string} [name] k6 `name` tag (groups URLs with ids)
 * @property {import('k6/http').Params['responseCallback']} [expect] which statuses are not failures
 * @property {string | number} [timeout]
 */

/**
 * Request headers for a Claude API call through the gateway.
 * @param {CallOptions} [opts]
 * @returns {Headers}
 */
export function claudeHeaders(opts = {}) {
  /** @type {Headers} */
  const h = {
    'x-api-key': orElse(opts.apiKey, API_KEY),
    'anthropic-version': ANTHROPIC_VERSION,
    'content-type': 'application/json',
  };
  if (opts.mode !== undefined) h['x-gateway-mode'] = opts.mode;
  return Object.assign(h, orElse(opts.headers, {}));
}

/**
 * k6 request params from call options.
 * @param {CallOptions} opts
 * @param {string} defaultName
 * @returns {Params}
 */
function params(opts, defaultName) {
  /** @type {Params} */
  const p = {
    responseType: 'text',
    headers: claudeHeaders(opts),
    tags: Object.assign({ name: orElse(opts.name, defaultName) }, orElse(opts.tags, {})),
  };
  if (opts.expect !== undefined) p.responseCallback = opts.expect;
  if (opts.timeout !== undefined) p.timeout = opts.timeout;
  return p;
}

/**
 * @typedef {object} MessageBody
 * @property {string} model
 * @property {number} max_tokens
 * @property {{ role: 'user' | 'assistant', content: string }[]} messages
 * @property {boolean} [stream]
 */

/**
 * A Messages API body with one user turn.
 * @param {string} prompt
 * @param {{ stream?: boolean, maxTokens?: number, model?: string }} [extra]
 * @returns {MessageBody}
 */
export function messageBody(prompt, extra = {}) {
  /** @type {MessageBody} */
  const body = {
    model: orElse(extra.model, MODEL),
    max_tokens: orElse(extra.maxTokens, MAX_TOKENS),
    messages: [{ role: 'user', content: prompt }],
  };
  if (extra.stream === true) body.stream = true;
  return body;
}

/**
 * A prompt unlikely to be shared with any other request (defeats coalescing and caching).
 * @param {string} label
 * @returns {string}
 */
export function uniquePrompt(label) {
  return `${label} vu=${__VU} iter=${__ITER} t=${Date.now()} r=${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * POST /v1/messages (non-streaming).
 * @param {string} prompt
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function messages(prompt, opts = {}) {
  return http.post(`${GATEWAY_URL}/v1/messages`, JSON.stringify(messageBody(prompt)), params(opts, 'POST /v1/messages'));
}

/**
 * POST /v1/messages with `"stream": true`. k6 buffers the whole event stream; `res.timings.waiting`
 * is the time to first byte.
 * @param {string} prompt
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function stream(prompt, opts = {}) {
  const p = params(opts, 'POST /v1/messages (stream)');
  p.headers = Object.assign({ accept: 'text/event-stream' }, orElse(p.headers, {}));
  return http.post(`${GATEWAY_URL}/v1/messages`, JSON.stringify(messageBody(prompt, { stream: true })), p);
}

/**
 * POST /v1/messages/count_tokens.
 * @param {string} prompt
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function countTokens(prompt, opts = {}) {
  const body = { model: MODEL, messages: [{ role: 'user', content: prompt }] };
  return http.post(`${GATEWAY_URL}/v1/messages/count_tokens`, JSON.stringify(body), params(opts, 'POST /v1/messages/count_tokens'));
}

/**
 * GET /v1/models.
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function models(opts = {}) {
  return http.get(`${GATEWAY_URL}/v1/models`, params(opts, 'GET /v1/models'));
}

/**
 * POST /v1/messages/batches with one request per prompt.
 * @param {string[]} prompts
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function createBatch(prompts, opts = {}) {
  const requests = prompts.map((prompt, i) => ({ custom_id: `req-${i}`, params: messageBody(prompt) }));
  return http.post(`${GATEWAY_URL}/v1/messages/batches`, JSON.stringify({ requests }), params(opts, 'POST /v1/messages/batches'));
}

/**
 * GET /v1/messages/batches/{id}.
 * @param {string} id
 * @param {CallOptions} [opts]
 * @returns {Res}
 */
export function getBatch(id, opts = {}) {
  return http.get(`${GATEWAY_URL}/v1/messages/batches/${encodeURIComponent(id)}`, params(opts, 'GET /v1/messages/batches/{id}'));
}

// ---------------------------------------------------------------------------------------------
// Response inspection

/**
 * A response header by case-insensitive name (k6 canonicalizes names, e.g. `Retry-After`).
 * @param {import('k6/http').Response} res
 * @param {string} name
 * @returns {string | undefined}
 */
export function header(res, name) {
  const lower = name.toLowerCase();
  for (const key of Object.keys(res.headers)) {
    if (key.toLowerCase() === lower) return res.headers[key];
  }
  return undefined;
}

/**
 * The body as text ('' when there is none or it is binary).
 * @param {import('k6/http').Response} res
 * @returns {string}
 */
export function bodyText(res) {
  return typeof res.body === 'string' ? res.body : '';
}

/**
 * The body parsed as a JSON object, or undefined when it is not one.
 * @param {import('k6/http').Response} res
 * @returns {{ [key: string]: unknown } | undefined}
 */
export function jsonObject(res) {
  try {
    /** @type {unknown} */
    const v = JSON.parse(bodyText(res));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? /** @type {{ [key: string]: unknown }} */ (v) : undefined;
  } catch (_e) {
    return undefined;
  }
}

/**
 * True when the response is an Anthropic-shaped error `{"type":"error","error":{"type":..,"message":..}}`,
 * and, when `type` is given, of that error type (e.g. `rate_limit_error`, `overloaded_error`).
 * @param {import('k6/http').Response} res
 * @param {string} [type]
 * @returns {boolean}
 */
export function isAnthropicError(res, type) {
  const body = jsonObject(res);
  if (body === undefined || body.type !== 'error') return false;
  const err = body.error;
  if (err === null || typeof err !== 'object') return false;
  const e = /** @type {{ type?: unknown, message?: unknown }} */ (err);
  if (typeof e.type !== 'string' || typeof e.message !== 'string') return false;
  return type === undefined || e.type === type;
}

/**
 * True when `retry-after` is present and a non-negative number of seconds (or an HTTP date).
 * @param {import('k6/http').Response} res
 * @returns {boolean}
 */
export function hasRetryAfter(res) {
  const v = header(res, 'retry-after');
  if (v === undefined || v.trim() === '') return false;
  const n = Number(v);
  return (Number.isFinite(n) && n >= 0) || !Number.isNaN(Date.parse(v));
}

/**
 * The SSE event names of a buffered event stream, in order.
 * @param {string} text
 * @returns {string[]}
 */
export function sseEvents(text) {
  /** @type {string[]} */
  const out = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('event:')) out.push(line.slice('event:'.length).trim());
  }
  return out;
}

/**
 * True when the response is an event stream whose last event is `message_stop`.
 * @param {import('k6/http').Response} res
 * @returns {boolean}
 */
export function streamCompleted(res) {
  const type = orElse(header(res, 'content-type'), '');
  if (!type.startsWith('text/event-stream')) return false;
  const events = sseEvents(bodyText(res));
  return events.length > 0 && events[events.length - 1] === 'message_stop';
}

/**
 * The gateway's coalescing role for a response: leader, follower, bypass, or '' when absent.
 * @param {import('k6/http').Response} res
 * @returns {string}
 */
export function coalesceRole(res) {
  return orElse(header(res, 'x-gateway-coalesce-role'), '').trim().toLowerCase();
}

/**
 * True when the gateway served the answer: it marks every proxied answer with how it was served
 * (`x-gateway-coalesce-role`: leader, follower, bypass or cache). The bare mock never sends it, so
 * the checks below fail when a script is pointed at an upstream without the gateway.
 * @param {import('k6/http').Response} res
 * @returns {boolean}
 */
export function servedByGateway(res) {
  const role = coalesceRole(res);
  return role === 'leader' || role === 'follower' || role === 'bypass' || role === 'cache';
}

// ---------------------------------------------------------------------------------------------
// Checks bundling the usual assertions per endpoint

/**
 * @param {Res} res
 * @param {Headers} [tags]
 * @returns {boolean}
 */
export function checkMessage(res, tags) {
  return check(
    res,
    {
      'messages: status 200': (r) => r.status === 200,
      'messages: served by the gateway': (r) => servedByGateway(r),
      'messages: type message with content': (r) => {
        const b = jsonObject(r);
        return b !== undefined && b.type === 'message' && Array.isArray(b.content);
      },
    },
    tags,
  );
}

/**
 * @param {Res} res
 * @param {Headers} [tags]
 * @returns {boolean}
 */
export function checkStream(res, tags) {
  return check(
    res,
    {
      'stream: status 200': (r) => r.status === 200,
      'stream: served by the gateway': (r) => servedByGateway(r),
      'stream: ends with message_stop': (r) => streamCompleted(r),
    },
    tags,
  );
}

/**
 * @param {Res} res
 * @param {Headers} [tags]
 * @returns {boolean}
 */
export function checkCountTokens(res, tags) {
  return check(
    res,
    {
      'count_tokens: status 200': (r) => r.status === 200,
      'count_tokens: served by the gateway': (r) => servedByGateway(r),
      'count_tokens: input_tokens is a number': (r) => {
        const b = jsonObject(r);
        return b !== undefined && typeof b.input_tokens === 'number';
      },
    },
    tags,
  );
}

/**
 * @param {Res} res
 * @param {Headers} [tags]
 * @returns {boolean}
 */
export function checkModels(res, tags) {
  return check(
    res,
    {
      'models: status 200': (r) => r.status === 200,
      'models: served by the gateway': (r) => servedByGateway(r),
      'models: data is a list': (r) => {
        const b = jsonObject(r);
        return b !== undefined && Array.isArray(b.data);
      },
    },
    tags,
  );
}

/**
 * Checks a batch answer (create or retrieve) and returns its id ('' when missing).
 * @param {Res} res
 * @param {string} what 'create' or 'get'
 * @param {Headers} [tags]
 * @returns {string}
 */
export function checkBatch(res, what, tags) {
  const b = jsonObject(res);
  const id = b !== undefined && typeof b.id === 'string' ? b.id : '';
  check(
    res,
    {
      [`batch ${what}: status 200`]: (r) => r.status === 200,
      [`batch ${what}: served by the gateway`]: (r) => servedByGateway(r),
      [`batch ${what}: message_batch with id`]: () => b !== undefined && b.type === 'message_batch' && id !== '',
    },
    tags,
  );
  return id;
}

// ---------------------------------------------------------------------------------------------
// Mock upstream control (no auth)

/**
 * @typedef {object} MockStats
 * @property {number} requests
 * @property {{ [route: string]: number }} byPath
 * @property {number} [connections]
 */

/**
 * GET {MOCK}/_mock/stats, or undefined when unreachable / malformed.
 * @returns {MockStats | undefined}
 */
export function mockStats() {
  const res = http.get(`${MOCK_URL}/_mock/stats`, { tags: { name: 'mock stats' } });
  const b = res.status === 200 ? jsonObject(res) : undefined;
  if (b === undefined || typeof b.requests !== 'number') return undefined;
  const byPath = b.byPath !== null && typeof b.byPath === 'object' ? /** @type {{ [route: string]: number }} */ (b.byPath) : {};
  return { requests: b.requests, byPath, connections: typeof b.connections === 'number' ? b.connections : undefined };
}

/**
 * POST {MOCK}/_mock/reset (clears counters, batches and the fault plan).
 * @returns {boolean} whether the mock accepted it
 */
export function mockReset() {
  return http.post(`${MOCK_URL}/_mock/reset`, null, { tags: { name: 'mock reset' } }).status === 200;
}

/**
 * @typedef {object} FaultPlan
 * @property {number} [status] answer with this status and an Anthropic error body
 * @property {'reset' | 'stall' | 'stall-body' | 'midstream-error' | 'midstream-reset' | 'gzip' | 'first-event-error'} [kind]
 * @property {number} [count] apply to the next N API requests only
 * @property {string} [retryAfter]
 * @property {number} [latencyMs]
 * @property {number} [eventIntervalMs]
 */

/**
 * POST {MOCK}/_mock/faults: install a global fault plan, or clear it with null.
 * @param {FaultPlan | null} plan
 * @returns {boolean} whether the mock accepted it
 */
export function mockFaults(plan) {
  const res = http.post(`${MOCK_URL}/_mock/faults`, JSON.stringify(plan), {
    headers: { 'content-type': 'application/json' },
    tags: { name: 'mock faults' },
  });
  return res.status === 200;
}

/**
 * POST {controlUrl}/_mock/script: play a failure script on a mock (tools/mock-upstream/script.ts
 * shorthand, e.g. 'down', 'down:5s', '529:3'; 'healthy' ends it). `controlUrl` is the mock's
 * url, or its control-only port (MOCK_CONTROL_PORT) when the script takes its API port down.
 * @param {string} controlUrl
 * @param {string} script
 * @returns {boolean} whether the mock accepted it
 */
export function mockScript(controlUrl, script) {
  return http.post(`${controlUrl}/_mock/script`, script, { headers: { 'content-type': 'text/plain' }, tags: { name: 'mock script' } }).status === 200;
}

// ---------------------------------------------------------------------------------------------
// Gateway observations

/**
 * GET {GATEWAY}/metrics and check that the gateway counted upstream calls for `mode` (the
 * `x-gateway-mode` every request of a script carries). Only a gateway has this: the bare mock
 * answers 404. With more than the gateway's MAX_MODES modes seen since it started, later modes
 * are counted as `other`: run the scripts against a gateway started for them.
 * @param {string} mode
 * @param {Headers} [tags]
 * @returns {boolean}
 */
export function checkGatewayCounted(mode, tags) {
  const res = http.get(`${GATEWAY_URL}/metrics`, { tags: { name: 'GET /metrics' } });
  const text = bodyText(res);
  return check(
    res,
    {
      'metrics: status 200': (r) => r.status === 200,
      [`metrics: claude_api_calls_total counts mode ${mode}`]: () =>
        text.split('\n').some((line) => line.indexOf('claude_api_calls_total{') === 0 && line.indexOf(`mode="${mode}"`) > 0),
    },
    tags,
  );
}
