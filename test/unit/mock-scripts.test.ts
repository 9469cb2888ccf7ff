import { Agent, request } from 'undici';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockUpstream, KeyBudgets, parseScript, ScriptPlayer, type MockScript, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { ephemeralRange } from '../../tools/mock-upstream/stable-port.js';
import { eventually, until } from '../helpers/deferred.js';
import { startMockProcess, runMockUntilExit } from '../helpers/mock-process.js';
import { tryConnect } from '../helpers/ports.js';

/**
 * The mock's failure scripts (tools/mock-upstream/script.ts): the shorthand, the stepping (on a fake
 * clock), and each script over real sockets: down (the API port refuses connections), a status for
 * N requests or T ms, a stream whose first event is `error`, per-key rate limits, and the control
 * endpoint that changes the script at run time.
 */

const HEADERS = { 'x-api-key': 'sk-ant-test-script-key-a', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const params = { model: 'claude-sonnet-5', max_tokens: 32, messages: [{ role: 'user', content: 'Say hello' }] };

function post(url: string, body: unknown = params, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/messages`, { method: 'POST', headers: { ...HEADERS, ...headers }, body: JSON.stringify(body) });
}

/** The promise's value, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function errorType(res: Response): Promise<string> {
  const body = (await res.json()) as { type: string; error: { type: string } };
  assert.equal(body.type, 'error');
  return body.error.type;
}

/** The message parseScript gives for a bad script. */
function problem(text: string): string {
  const parsed = parseScript(text);
  if (typeof parsed !== 'string') throw new Error(`"${text}" parsed`);
  return parsed;
}

function script(text: string): MockScript {
  const parsed = parseScript(text);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

describe('mock failure scripts: the shorthand', () => {
  test('steps, bounds, repeat and rate-limit parse; bad tokens are named', () => {
    assert.deepEqual(script('529:3'), { steps: [{ do: 'status', status: 529, requests: 3 }], repeat: false });
    assert.deepEqual(script('healthy:20s, down:500ms, repeat'), {
      steps: [
        { do: 'healthy', ms: 20_000 },
        { do: 'down', ms: 500 },
      ],
      repeat: true,
    });
    assert.deepEqual(script('first-event-error:2,rate-limit:5/60s/1000'), {
      steps: [{ do: 'fault', kind: 'first-event-error', requests: 2 }],
      repeat: false,
      rateLimit: { requests: 5, windowMs: 60_000, tokens: 1000 },
    });
    assert.match(problem('explode'), /unknown action "explode"/);
    assert.match(problem('529:soon'), /"529:soon": the bound must be/);
    assert.match(problem('down:3'), /down can only be bounded by a duration/);
    assert.match(problem('down,healthy:1s'), /only the last step may be unbounded/);
    assert.match(problem('529:1s,down,repeat'), /none when the script repeats/);
    assert.match(problem('rate-limit:0/1s'), /rate-limit:<requests>/);
    assert.match(problem('200'), /unknown action "200"/);
  });
});

describe('mock failure scripts: stepping on a fake clock', () => {
  test('a request-bounded step ends after its requests; a timed one at exactly its end', () => {
    let now = 1_000;
    const player = new ScriptPlayer(script('529:2,down:1s,500:1s'), () => now);
    assert.deepEqual(player.take(), { down: false, fault: { status: 529 } });
    now += 5_000; // time does not end a request-bounded step
    assert.deepEqual(player.take(), { down: false, fault: { status: 529 } });
    // down began at the second request (t = 6000) and lasts 1 s
    assert.equal(player.isDown(), true);
    assert.equal(player.nextChangeAt(), 7_000);
    now = 6_999;
    assert.equal(player.isDown(), true);
    now = 7_000;
    assert.equal(player.isDown(), false);
    // A late look at the clock does not stretch the script: 500 ran 7000..8000, then healthy.
    now = 7_999;
    assert.deepEqual(player.take(), { down: false, fault: { status: 500 } });
    now = 8_000;
    assert.deepEqual(player.take(), { down: false, fault: {} });
    assert.equal(player.nextChangeAt(), undefined);
  });

  test('a repeating script cycles, skipping whole cycles when nobody looked', () => {
    let now = 0;
    const player = new ScriptPlayer(script('healthy:10s,down:5s,repeat'), () => now);
    assert.equal(player.isDown(), false);
    now = 10_000;
    assert.equal(player.isDown(), true);
    now = 15_000;
    assert.equal(player.isDown(), false);
    now = 15_000 + 3 * 15_000 + 12_000; // three cycles later, 2 s into down
    assert.equal(player.isDown(), true);
    assert.equal(player.nextChangeAt(), 15_000 + 3 * 15_000 + 15_000);
  });

  test('key budgets: per key, fixed window, the 429 does not spend, tokens count too', () => {
    let now = 0;
    const budgets = new KeyBudgets({ requests: 2, windowMs: 60_000, tokens: 100 }, () => now);
    assert.equal(budgets.charge('key-a', 10).headers['anthropic-ratelimit-requests-remaining'], '1');
    assert.equal(budgets.charge('key-a', 10).headers['anthropic-ratelimit-requests-remaining'], '0');
    now = 20_000;
    const limited = budgets.charge('key-a', 10);
    assert.equal(limited.limitedForS, 40);
    assert.equal(limited.headers['anthropic-ratelimit-tokens-remaining'], '80');
    assert.equal(budgets.charge('key-b', 10).limitedForS, undefined, 'another key has its own budget');
    assert.equal(budgets.charge('key-c', 101).limitedForS, 40 + 20, 'over the token budget in one request (window from now)');
    now = 60_000;
    assert.equal(budgets.charge('key-a', 10).limitedForS, undefined, 'a new window');
    assert.ok(!JSON.stringify(budgets.snapshot()).includes('key-a'), 'raw keys are never held');
  });
});

describe('mock failure scripts over real sockets', () => {
  const mocks: MockUpstream[] = [];
  const start = async (...args: Parameters<typeof createMockUpstream>): Promise<MockUpstream> => {
    const mock = await createMockUpstream(...args);
    mocks.push(mock);
    return mock;
  };
  after(() => Promise.all(mocks.map((m) => m.close())));

  test('down refuses connections, cuts open ones, and the control port brings it back', async () => {
    const mock = await start({ controlPort: 0 });
    assert.ok(mock.controlUrl !== undefined);
    // A request held open (no answer ever) when the mock goes down is cut, as by a process that died.
    const held = post(mock.url, params, { 'x-mock-fault': 'stall' });
    await until(() => mock.stats().activeRequests === 1, 5_000, 'the stalled request to arrive');
    // A kept-alive connection opened while healthy...
    const agent = new Agent({ connections: 1, keepAliveTimeout: 60_000 });
    try {
      const first = await request(`${mock.url}/v1/models`, { headers: HEADERS, dispatcher: agent });
      assert.equal(first.statusCode, 200);
      await first.body.text();

      const down = await within(fetch(`${mock.controlUrl}/_mock/script`, { method: 'POST', body: 'down' }), 5_000, 'going down');
      assert.equal(down.status, 200);
      await assert.rejects(within(held, 5_000, 'the held request to be cut'), TypeError);
      assert.equal(mock.isDown(), true);
      assert.equal(await tryConnect(mock.url), 'ECONNREFUSED');
      // ...does not serve either: the mock behaves as a process that went away.
      await assert.rejects(request(`${mock.url}/v1/models`, { headers: HEADERS, dispatcher: agent }));
      const state = (await (await fetch(`${mock.controlUrl}/_mock/script`)).json()) as { down: boolean; listening: boolean; step: number };
      assert.deepEqual({ down: state.down, listening: state.listening, step: state.step }, { down: true, listening: false, step: 1 });

      const up = await fetch(`${mock.controlUrl}/_mock/script`, { method: 'POST', body: 'null' });
      assert.equal(up.status, 200);
      assert.equal(mock.isDown(), false);
      assert.equal((await post(mock.url)).status, 200);
      const notApi = await fetch(`${mock.controlUrl}/v1/models`, { headers: HEADERS });
      assert.equal(notApi.status, 404, 'the control port serves no API');
    } finally {
      await agent.close();
    }
  });

  test('down for a duration comes back by itself on the same port', async () => {
    const mock = await start();
    await mock.setScript('down:300ms');
    assert.equal(await tryConnect(mock.url), 'ECONNREFUSED');
    await eventually(async () => (await tryConnect(mock.url)) === 'connected', 10_000, 'the mock to listen again');
    assert.equal((await post(mock.url)).status, 200);
  });

  test('a mock listens below the kernel\'s ephemeral range: no listen(0) or outgoing connection is handed its port while it is down', async () => {
    const range = ephemeralRange();
    assert.ok(range !== undefined, 'Linux publishes its ephemeral port range');
    for (const mock of [await start(), await start({ controlPort: 0 }), await start({ script: 'down' })]) {
      const port = Number(new URL(mock.url).port);
      assert.ok(port < range[0], `port ${port} is inside the ephemeral range ${range.join('-')}: another process could take it while the mock is down`);
    }
  });

  test('a script from the start: down until told otherwise, in process', async () => {
    const mock = await start({ script: 'down' });
    assert.equal(await tryConnect(mock.url), 'ECONNREFUSED');
    mock.reset(); // reset restores a healthy mock
    await eventually(async () => (await tryConnect(mock.url)) === 'connected', 5_000, 'reset to bring the mock back');
    await assert.rejects(createMockUpstream({ script: 'down:3' }), /invalid mock script: step 1: down can only be bounded by a duration/);
  });

  test('529 for the first N requests, posted as shorthand on the API port, then healthy', async () => {
    const mock = await start();
    const set = await fetch(`${mock.url}/_mock/script`, { method: 'POST', body: '529:2' });
    assert.equal(set.status, 200);
    await set.arrayBuffer();
    for (let i = 0; i < 2; i++) {
      const res = await post(mock.url);
      assert.equal(res.status, 529);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(await errorType(res), 'overloaded_error');
    }
    assert.equal((await post(mock.url)).status, 200);
    const bad = await fetch(`${mock.url}/_mock/script`, { method: 'POST', body: JSON.stringify({ steps: [{ do: 'status', status: 200 }] }) });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /status 400\.\.599/);
  });

  test('529 for a duration (object form), then healthy', async () => {
    const mock = await start();
    await mock.setScript({ steps: [{ do: 'status', status: 529, ms: 200 }], repeat: false });
    assert.equal((await post(mock.url)).status, 529);
    await eventually(async () => (await post(mock.url)).status === 200, 10_000, 'the 529 step to end');
  });

  test('first-event-error: a stream whose first event is an overloaded_error; plain calls are served', async () => {
    const mock = await start();
    await mock.setScript('first-event-error:1');
    const res = await post(mock.url, { ...params, stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    assert.equal(text, `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}\n\n`);
    // One request spent the step; the next stream is whole. The per-request header works as well.
    assert.match(await (await post(mock.url, { ...params, stream: true })).text(), /event: message_start[\s\S]*event: message_stop/);
    assert.match(await (await post(mock.url, { ...params, stream: true }, { 'x-mock-fault': 'first-event-error' })).text(), /^event: error\n/);
    assert.equal((await post(mock.url, params, { 'x-mock-fault': 'first-event-error' })).status, 200);
    assert.equal(mock.stats().usage.output_tokens > 0, true);
  });

  test('rate-limit: each key has its budget, reported on every answer; past it 429 with retry-after', async () => {
    const mock = await start({ script: 'rate-limit:2/60s' });
    const keyB = { 'x-api-key': 'sk-ant-test-script-key-b' };
    const a1 = await post(mock.url);
    assert.equal(a1.headers.get('anthropic-ratelimit-requests-limit'), '2');
    assert.equal(a1.headers.get('anthropic-ratelimit-requests-remaining'), '1');
    assert.match(a1.headers.get('anthropic-ratelimit-requests-reset') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Number(a1.headers.get('anthropic-ratelimit-tokens-remaining')) < Number(a1.headers.get('anthropic-ratelimit-tokens-limit')));
    // An invalid key is refused before the budget and never charged.
    assert.equal((await post(mock.url, params, { 'x-api-key': 'sk-ant-invalid' })).status, 401);
    assert.equal((await post(mock.url)).headers.get('anthropic-ratelimit-requests-remaining'), '0');
    const limited = await post(mock.url);
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
    assert.equal(limited.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.equal(await errorType(limited), 'rate_limit_error');
    // Another key (Bearer this time) is untouched.
    const b = await post(mock.url, params, { 'x-api-key': '', authorization: `Bearer ${keyB['x-api-key']}` });
    assert.equal(b.status, 200);
    assert.equal(b.headers.get('anthropic-ratelimit-requests-remaining'), '1');
    const state = (await (await fetch(`${mock.url}/_mock/script`)).json()) as { keys: Record<string, { requests: number }> };
    assert.deepEqual(Object.values(state.keys).map((k) => k.requests).sort(), [1, 2]);
    assert.ok(!JSON.stringify(state).includes('sk-ant'), 'the control plane shows no key');
  });
});

describe('mock failure scripts: the CLI', () => {
  test('MOCK_SCRIPT=down with MOCK_CONTROL_PORT: the API port refuses, the control port answers and revives it', async () => {
    const mock = await startMockProcess({ MOCK_HOST: '127.0.0.1', MOCK_SCRIPT: 'down', MOCK_CONTROL_PORT: '0' });
    try {
      const { log } = mock;
      assert.equal(await tryConnect(log.url), 'ECONNREFUSED');
      assert.equal((await fetch(`${log.controlUrl ?? ''}/_mock/script`, { method: 'POST', body: '' })).status, 200);
      assert.equal((await post(log.url)).status, 200);
      assert.equal(await mock.stop(), 0);
    } finally {
      mock.kill();
    }
  });

  test('a bad MOCK_SCRIPT names the variable and the token, and exits 1', async () => {
    const { code, stderr } = await runMockUntilExit({ MOCK_SCRIPT: '529:2,meltdown' });
    assert.equal(code, 1);
    assert.match(stderr, /MOCK_SCRIPT: script token "meltdown": unknown action/);
  });
});
