import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { deferred } from '../helpers/deferred.js';
import { freePort } from '../helpers/ports.js';
import { rawExchange } from '../helpers/raw-http.js';
import { scrape, sum } from '../helpers/prom.js';
import { startStack, TEST_API_KEY, type Stack } from '../helpers/stack.js';

const BREAKER_ENV = {
  BREAKER_VOLUME_THRESHOLD: '4',
  BREAKER_ERROR_THRESHOLD: '50',
  BREAKER_WINDOW_MS: '10000',
  BREAKER_RESET_TIMEOUT_MS: '30000',
  UPSTREAM_RETRIES: '0',
};

function body(model = 'claude-sonnet-5', content = 'hello'): string {
  return JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content }] });
}

interface Answer {
  status: number;
  headers: Headers;
  json: { type?: string; error?: { type: string; message?: string } };
}

async function post(stack: Stack, payload: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${stack.gateway.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01', ...headers },
    body: payload,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text.startsWith('{') ? (JSON.parse(text) as Answer['json']) : {} };
}

/** Lets loopback I/O make progress without advancing the (fake) clock. */
async function settleIo(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** Advances the fake clock in steps, letting I/O run between steps, until `promise` settles. */
async function driveClock<T>(promise: Promise<T>, stepMs: number, maxSteps = 400): Promise<T> {
  let settled = false;
  const isSettled = (): boolean => settled;
  const watched = promise.finally(() => (settled = true));
  for (let i = 0; i < maxSteps && !isSettled(); i++) {
    await settleIo();
    if (!isSettled()) mock.timers.tick(stepMs);
  }
  await settleIo();
  assert.ok(isSettled(), 'the operation settled under the fake clock');
  return watched;
}

async function tripBreaker(stack: Stack, model = 'claude-sonnet-5'): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const a = await post(stack, body(model, `fail ${i}`), { 'x-mock-status': '500' });
    assert.equal(a.status, 500, 'upstream 500s pass through unchanged while closed');
  }
}

describe('circuit breaker', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    mock.timers.reset();
    await stack?.close();
    stack = undefined;
  });

  test('opens at the configured volume and threshold; open answers fast 529 overloaded_error without calling upstream', async () => {
    stack = await startStack({ env: BREAKER_ENV });
    const first = await post(stack, body('claude-sonnet-5', 'x'), { 'x-mock-status': '500' });
    assert.equal(first.status, 500);
    for (let i = 0; i < 2; i++) await post(stack, body('claude-sonnet-5', `y${i}`), { 'x-mock-status': '500' });
    assert.equal((await post(stack, body('claude-sonnet-5', 'below volume'))).status, 200, '3 failures in 4 calls: no failure has yet been judged at volume, still closed');
    // The next failure is judged at volume: 4 failures of 5 calls (80% > 50%) opens it.
    assert.equal((await post(stack, body('claude-sonnet-5', 'z'), { 'x-mock-status': '500' })).status, 500);
    const upstreamCalls = stack.mock.stats().requests;

    const refused = await post(stack, body());
    assert.equal(refused.status, 529);
    assert.equal(refused.json.type, 'error');
    assert.equal(refused.json.error?.type, 'overloaded_error');
    assert.match(String(refused.json.error.message), /claude-sonnet-5/);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 30, `retry-after ${retryAfter}`);
    assert.equal(stack.mock.stats().requests, upstreamCalls, 'no upstream call while open');

    // Another model has its own breaker.
    assert.equal((await post(stack, body('claude-haiku-5-5'))).status, 200);

    const samples = await scrape(stack.gateway.url);
    const name = 'anthropic/claude-sonnet-5'; // <upstream name>/<model>: the UPSTREAM_URL shorthand is named anthropic
    assert.equal(sum(samples, 'circuit_breaker_state', { breaker: name }), 2);
    assert.equal(sum(samples, 'circuit_breaker_events_total', { breaker: name, event: 'open' }), 1);
    assert.equal(sum(samples, 'circuit_breaker_events_total', { breaker: name, event: 'reject' }), 1);
    assert.ok(stack.logs.records().some((r) => r.msg === 'circuit breaker opened' && r.breaker === name));
  });

  test('4xx and 429 answers never trip it', async () => {
    stack = await startStack({ env: BREAKER_ENV });
    for (let i = 0; i < 6; i++) assert.equal((await post(stack, body('claude-sonnet-5', `a${i}`), { 'x-mock-status': '400' })).status, 400);
    for (let i = 0; i < 6; i++) {
      const limited = await post(stack, body('claude-sonnet-5', `b${i}`), { 'x-mock-status': '429', 'x-mock-retry-after': '7' });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '7', '429 passes through with its retry-after');
    }
    assert.equal((await post(stack, body())).status, 200);
  });

  test('half-open lets exactly one probe through; success closes, failure re-opens', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const gate = deferred();
    let holdProbe = false;
    stack = await startStack({ env: BREAKER_ENV, mock: { onRequest: () => (holdProbe ? gate.promise : undefined) } });
    await tripBreaker(stack);
    assert.equal((await post(stack, body())).status, 529);

    // Reset timeout passes: half-open. The first call probes; it fails; the breaker re-opens.
    mock.timers.tick(30_000);
    assert.equal((await post(stack, body('claude-sonnet-5', 'probe 1'), { 'x-mock-status': '529' })).status, 529);
    const reopened = await post(stack, body());
    assert.equal(reopened.status, 529, 'a failed probe re-opens');
    assert.equal(reopened.headers.get('retry-after'), '30');

    mock.timers.tick(30_000);
    holdProbe = true;
    const probe = post(stack, body('claude-sonnet-5', 'probe 2'));
    await driveClock(new Promise<void>((resolve) => {
      const check = (): void => (stack?.mock.requests.at(-1)?.body.includes('probe 2') === true ? resolve() : void setImmediate(check));
      check();
    }), 0);
    const before = stack.mock.stats().requests;
    const second = await post(stack, body('claude-sonnet-5', 'while probing'));
    assert.equal(second.status, 529, 'only one probe at a time');
    assert.equal(second.headers.get('retry-after'), '1');
    assert.equal(stack.mock.stats().requests, before);
    holdProbe = false;
    gate.resolve();
    assert.equal((await probe).status, 200);
    assert.equal((await post(stack, body('claude-sonnet-5', 'closed again'))).status, 200, 'a successful probe closes');
  });

  test('a stream that fails after its headers counts as a failure; one flight is one outcome', async () => {
    const gate = deferred();
    let hold = true;
    stack = await startStack({ env: { ...BREAKER_ENV, BREAKER_VOLUME_THRESHOLD: '2' }, mock: { onRequest: () => (hold ? gate.promise : undefined) } });
    const client = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-error' } });
    const shared = Array.from({ length: 5 }, () => client.messages.stream({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'same' }] }).finalMessage().catch((e: unknown) => e));
    while (stack.gateway.flights.subscribers() < 5) await settleIo(5);
    hold = false;
    gate.resolve();
    await Promise.all(shared);
    let samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'circuit_breaker_events_total', { event: 'failure' }), 1, 'five clients, one flight, one failure');
    assert.equal(sum(samples, 'circuit_breaker_state'), 0, 'one outcome is below the volume threshold');

    await client.messages.stream({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'other' }] }).finalMessage().catch(() => undefined);
    samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'circuit_breaker_state'), 2, 'two mid-stream failures of two calls open it');
    assert.equal((await post(stack, body())).status, 529);
  });

  test('the official SDK with retries succeeds across an outage once the breaker closes', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 5_000_000 });
    stack = await startStack({ env: BREAKER_ENV });
    stack.mock.setFaults({ status: 500, count: 4 }); // the outage: the next 4 upstream calls fail
    const client = stack.client({ maxRetries: 6 });
    const message = await driveClock(client.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'outage' }] }), 1_000);
    assert.equal(message.type, 'message');
    const samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'circuit_breaker_events_total', { event: 'open' }), 1);
    assert.equal(sum(samples, 'circuit_breaker_events_total', { event: 'close' }), 1);
    assert.equal(stack.mock.stats().requests, 5, '4 failures, then the probe; refused attempts never reached upstream');
  });
});

describe('safe retries', () => {
  test('connect failures are retried within the budget; nothing else is', async () => {
    const port = await freePort();
    const stack = await startStack({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}`, UPSTREAM_RETRIES: '2', RETRY_BASE_DELAY_MS: '0', BREAKER: 'off' } });
    try {
      assert.equal((await post(stack, body())).status, 502);
      assert.equal(sum(await scrape(stack.gateway.url), 'upstream_retries_total', { reason: 'connect' }), 2);
    } finally {
      await stack.close();
    }
    const noBudget = await startStack({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}`, UPSTREAM_RETRIES: '2', RETRY_BUDGET_PERCENT: '0', BREAKER: 'off' } });
    try {
      assert.equal((await post(noBudget, body())).status, 502);
      assert.equal(sum(await scrape(noBudget.gateway.url), 'upstream_retries_total'), 0, 'no budget, no retries');
    } finally {
      await noBudget.close();
    }
  });

  test('529 is retried only when RETRY_ON_OVERLOADED is on, honouring retry-after', async () => {
    const stack = await startStack({ env: { RETRY_ON_OVERLOADED: 'on', UPSTREAM_RETRIES: '1' } });
    try {
      stack.mock.setFaults({ status: 529, count: 1, retryAfter: '0' });
      const answer = await post(stack, body());
      assert.equal(answer.status, 200);
      assert.equal(stack.mock.stats().requests, 2);
      stack.mock.setFaults({ status: 529, count: 1, retryAfter: '3600' });
      assert.equal((await post(stack, body('claude-sonnet-5', 'long wait'))).status, 529, 'a retry-after beyond RETRY_MAX_DELAY_MS is passed on');
    } finally {
      await stack.close();
    }
    const off = await startStack();
    try {
      off.mock.setFaults({ status: 529, count: 1, retryAfter: '0' });
      assert.equal((await post(off, body())).status, 529, 'by default the client (SDK) decides');
      assert.equal(off.mock.stats().requests, 1);
    } finally {
      await off.close();
    }
  });
});

describe('rate limiting', () => {
  afterEach(() => mock.timers.reset());

  test('per client key with standard headers; other keys, health and metrics unaffected; the window resets', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 10_000_000 });
    const stack = await startStack({ env: { RATE_LIMIT_RPM: '3' } });
    try {
      for (let i = 0; i < 3; i++) {
        const ok = await post(stack, body('claude-sonnet-5', `a${i}`));
        assert.equal(ok.status, 200);
        assert.match(ok.headers.get('ratelimit') ?? '', /limit=3, remaining=\d+, reset=\d+/);
        assert.ok(ok.headers.get('ratelimit-policy') !== null);
      }
      const limited = await post(stack, body('claude-sonnet-5', 'a4'));
      assert.equal(limited.status, 429);
      assert.equal(limited.json.error?.type, 'rate_limit_error');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      await assert.rejects(stack.client().messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'sdk' }] }), (err: unknown) => {
        assert.ok(err instanceof Anthropic.RateLimitError);
        return true;
      });

      assert.equal((await post(stack, body(), { 'x-api-key': 'sk-ant-another-client-key' })).status, 200, 'another key has its own budget');
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${stack.gateway.url}/healthz`)).status, 200);
      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'rate_limited_requests_total'), 2);

      mock.timers.tick(60_000);
      assert.equal((await post(stack, body('claude-sonnet-5', 'next window'))).status, 200, 'a new window admits again');
    } finally {
      mock.timers.reset();
      await stack.close();
    }
  });

  /** A raw POST carrying the SDK's headers plus `extra` header lines, as no HTTP client library would send them. */
  function rawPost(stack: Stack, extra: string[], content: string): Promise<{ status: number; type: string | undefined }> {
    const payload = body('claude-sonnet-5', content);
    const head = ['POST /v1/messages HTTP/1.1', 'host: 127.0.0.1', 'connection: close', 'content-type: application/json', 'anthropic-version: 2023-06-01', ...extra, `content-length: ${Buffer.byteLength(payload)}`];
    return rawExchange(stack.gateway.url, `${head.join('\r\n')}\r\n\r\n${payload}`).then((a) => ({
      status: a.status,
      type: a.body.startsWith('{') ? (JSON.parse(a.body) as Answer['json']).error?.type : undefined,
    }));
  }

  test('pass-through: a second, different credential is refused 400 before it counts or travels; the billed key keeps its own budget', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 10_000_000 });
    const stack = await startStack({ env: { RATE_LIMIT_RPM: '5' } });
    try {
      // The real key plus a rotating junk one, in either header and either order: each was a fresh bucket.
      for (let i = 0; i < 10; i++) {
        const junk = i % 2 === 0 ? `x-api-key: sk-ant-junk-${i}` : `authorization: Bearer sk-ant-junk-${i}`;
        const extra = i % 4 < 2 ? [`x-api-key: ${TEST_API_KEY}`, junk] : [junk, `authorization: Bearer ${TEST_API_KEY}`];
        const answer = await rawPost(stack, extra, `junk ${i}`);
        assert.deepEqual(answer, { status: 400, type: 'invalid_request_error' }, `request ${i} with two credentials`);
      }
      assert.equal(stack.mock.requests.length, 0, 'no request with two credentials reached upstream');
      // The same key in both headers is one credential, billed and counted once per request.
      assert.equal((await rawPost(stack, [`x-api-key: ${TEST_API_KEY}`, `authorization: Bearer ${TEST_API_KEY}`], 'same key twice')).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await rawPost(stack, [`x-api-key: ${TEST_API_KEY}`], `own ${i}`)).status, 200);
      assert.deepEqual(await rawPost(stack, [`authorization: Bearer ${TEST_API_KEY}`], 'sixth'), { status: 429, type: 'rate_limit_error' });
    } finally {
      mock.timers.reset();
      await stack.close();
    }
  });

  test('an open injecting gateway limits by client address: client keys are not billed, so rotating them buys nothing', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 10_000_000 });
    const stack = await startStack({ env: { RATE_LIMIT_RPM: '3', ANTHROPIC_API_KEY: 'sk-ant-gateway-held-0123456789', ALLOW_OPEN_GATEWAY: 'true' } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await rawPost(stack, [`x-api-key: sk-ant-rotating-${i}`], `open ${i}`)).status, 200);
      assert.deepEqual(await rawPost(stack, ['x-api-key: sk-ant-rotating-3'], 'open 3'), { status: 429, type: 'rate_limit_error' });
    } finally {
      mock.timers.reset();
      await stack.close();
    }
  });
});
