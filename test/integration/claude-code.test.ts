import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deferred } from '../helpers/deferred.js';
import { REPO_ROOT } from '../helpers/k6.js';
import { startStack, TEST_API_KEY, type Stack } from '../helpers/stack.js';
import { startUpstreamsGateway } from '../helpers/upstreams-stack.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';

/**
 * Claude Code (the `@anthropic-ai/claude-code` devDependency) as a second real client: run
 * non-interactively with ANTHROPIC_BASE_URL at a real gateway in front of the project's mock. It
 * sends what real clients send (`?beta=true`, many `anthropic-beta` values, 20+ tools, bodies of
 * tens of KB) and must get answers through the gateway.
 *
 * Offline by construction: HOME is a fresh temp dir, telemetry, error reporting, auto-update and
 * other non-essential traffic are turned off, and HTTPS_PROXY/HTTP_PROXY point at a local trap
 * listener (only 127.0.0.1 and localhost bypass it): any attempt to reach another host lands in the
 * trap, and each test asserts the trap saw no connection.
 */

const RUN_DEADLINE_MS = 45_000;

/**
 * The Claude Code binary: the package's `claude` (its postinstall links the platform binary in), or,
 * when install scripts did not run, the platform package's own binary. The first that answers
 * `--version` is used; undefined when neither does.
 */
function findClaude(): string | undefined {
  const candidates = [
    join(REPO_ROOT, 'node_modules', '.bin', 'claude'),
    join(REPO_ROOT, 'node_modules', '@anthropic-ai', `claude-code-${process.platform}-${process.arch}`, 'claude'),
  ];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      continue;
    }
    const home = mkdtempSync(join(tmpdir(), 'claude-gateway-claude-probe-'));
    try {
      const env = { PATH: process.env.PATH ?? '', HOME: home, DISABLE_AUTOUPDATER: '1', DISABLE_TELEMETRY: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' };
      const probe = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000, env });
      if (probe.status === 0 && /Claude Code/.test(probe.stdout)) return path;
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }
  return undefined;
}

const found = findClaude();
const CLAUDE = found ?? 'claude';

/** A listener that counts connections and closes them: the only proxy Claude Code is given. */
async function startTrap(): Promise<{ server: Server; url: string; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}`, connections: () => count };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `claude <args>` in `home`; past the deadline the process (ours) is killed and the promise rejects. */
async function runClaude(home: string, gatewayUrl: string, trapUrl: string, args: string[]): Promise<Run> {
  const cwd = join(home, 'work');
  mkdirSync(cwd, { recursive: true });
  const child = spawn(CLAUDE, args, {
    cwd,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      ANTHROPIC_BASE_URL: gatewayUrl,
      ANTHROPIC_API_KEY: TEST_API_KEY,
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_BUG_COMMAND: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      HTTPS_PROXY: trapUrl,
      HTTP_PROXY: trapUrl,
      NO_PROXY: '127.0.0.1,localhost',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`claude ${args.join(' ')} did not finish within ${RUN_DEADLINE_MS} ms:\n${Buffer.concat(err).toString('utf8')}`));
    }, RUN_DEADLINE_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

interface Result {
  type: string;
  subtype?: string;
  is_error?: boolean;
  result?: string;
  session_id?: string;
}

function parseResult(run: Run): Result {
  assert.equal(run.code, 0, `claude exited ${String(run.code)}:\n${run.stderr}\n${run.stdout.slice(0, 2000)}`);
  return JSON.parse(run.stdout) as Result;
}

/** Polls an async condition every 10 ms; rejects naming `what` after `timeoutMs`. */
async function eventually(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withClaudeStack(body: (stack: Stack, home: string, trap: Awaited<ReturnType<typeof startTrap>>) => Promise<void>, stack?: Stack): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'claude-gateway-claude-code-'));
  const trap = await startTrap();
  const own = stack ?? (await startStack({ env: { LOG_LEVEL: 'warn' } }));
  try {
    await body(own, home, trap);
    assert.equal(trap.connections(), 0, 'Claude Code tried to reach a host other than the gateway');
  } finally {
    await own.close();
    await new Promise((r) => trap.server.close(r));
    rmSync(home, { recursive: true, force: true });
  }
}

describe('Claude Code through the gateway', { skip: found !== undefined ? false : 'no working Claude Code binary in node_modules (npm ci installs @anthropic-ai/claude-code): skipped' }, () => {
  test('a plain turn: the real-world request shape is proxied and answered', { timeout: 60_000 }, async () => {
    await withClaudeStack(async (stack, home, trap) => {
      const result = parseResult(await runClaude(home, stack.gateway.url, trap.url, ['-p', 'plain turn: say hello', '--output-format', 'json']));
      assert.equal(result.type, 'result');
      assert.equal(result.is_error, false);
      assert.match(result.result ?? '', /^Mock reply to:/);

      const calls = stack.mock.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages'));
      assert.equal(calls.length, 1, `upstream calls: ${stack.mock.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
      const call = calls[0];
      assert.ok(call !== undefined);
      assert.equal(call.path, '/v1/messages?beta=true');
      const betas = String(call.headers['anthropic-beta'] ?? '').split(',').filter((b) => b.trim() !== '');
      assert.ok(betas.length >= 2, `anthropic-beta: ${betas.join(',')}`);
      const body = JSON.parse(call.body) as { tools?: unknown[]; stream?: boolean };
      assert.ok((body.tools ?? []).length >= 5, 'Claude Code sends its tools');
      assert.ok(call.body.length > 10_000, `a real-world body (${call.body.length} bytes)`);
      const authorized = String(call.headers['x-api-key'] ?? call.headers.authorization ?? '');
      assert.ok(authorized.includes(TEST_API_KEY), 'the client credential reaches upstream');
    });
  });

  test('a streamed turn: partial messages arrive as stream events', { timeout: 60_000 }, async () => {
    await withClaudeStack(async (stack, home, trap) => {
      const run = await runClaude(home, stack.gateway.url, trap.url, [
        '-p',
        'streamed turn: tell a story',
        '--output-format',
        'stream-json',
        '--verbose',
        '--include-partial-messages',
      ]);
      assert.equal(run.code, 0, run.stderr);
      const events = run.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { type: string; subtype?: string; is_error?: boolean; event?: { type?: string; delta?: { type?: string } } });
      const deltas = events.filter((e) => e.type === 'stream_event' && e.event?.type === 'content_block_delta' && e.event.delta?.type === 'text_delta');
      assert.ok(deltas.length >= 2, `text deltas streamed: ${deltas.length}`);
      assert.ok(events.some((e) => e.type === 'stream_event' && e.event?.type === 'message_stop'));
      const last = events[events.length - 1];
      assert.equal(last?.type, 'result');
      assert.equal(last.is_error, false);
      const call = stack.mock.requests.find((r) => r.method === 'POST' && r.path.startsWith('/v1/messages'));
      assert.ok(call !== undefined);
      assert.equal((JSON.parse(call.body) as { stream?: boolean }).stream, true);
    });
  });

  test('two identical concurrent runs with one session id coalesce into one upstream call', { timeout: 90_000 }, async () => {
    const marker = `coalesce ${randomUUID()}`;
    const release = deferred();
    let holding = false;
    // The leader's upstream call is held at the mock until the gateway has a follower on it.
    const stack = await startStack({
      env: { LOG_LEVEL: 'warn' },
      mock: {
        onRequest: async (req) => {
          if (holding && req.method === 'POST' && req.body.includes(marker)) await release.promise;
        },
      },
    });
    await withClaudeStack(async (_stack, home, trap) => {
      // One turn first, so the shared HOME holds Claude Code's settings before the concurrent runs
      // (two first runs would each write their own).
      parseResult(await runClaude(home, stack.gateway.url, trap.url, ['-p', 'warm up', '--output-format', 'json', '--no-session-persistence']));
      stack.mock.reset();
      holding = true;

      const sessionId = randomUUID();
      const args = ['-p', marker, '--session-id', sessionId, '--no-session-persistence', '--output-format', 'json'];
      try {
        const runs = Promise.all([runClaude(home, stack.gateway.url, trap.url, args), runClaude(home, stack.gateway.url, trap.url, args)]);
        runs.catch(() => undefined);
        await eventually(
          async () => ((await stack.gateway.metrics.coalesced.get()).values[0]?.value ?? 0) >= 1,
          RUN_DEADLINE_MS,
          'the second run to join the first run\'s flight',
        );
        release.resolve();
        const [a, b] = await runs;
        const first = parseResult(a);
        const second = parseResult(b);
        assert.equal(first.is_error, false);
        assert.equal(first.result, second.result);
        assert.equal(first.session_id, sessionId);
      } finally {
        release.resolve();
      }
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 1, 'one upstream call for both runs');
    }, stack);
  });
  test('a resumed session: its second turn reads the same prefix, so no prompt-cache break is counted', { timeout: 120_000 }, async () => {
    /** The session header of every Messages call upstream saw. */
    const sessions: (string | string[] | undefined)[] = [];
    const stack = await startStack({ env: { LOG_LEVEL: 'info' }, mock: {
        onRequest: (r) => {
          if (r.method === 'POST' && r.path.startsWith('/v1/messages?')) sessions.push(r.headers['x-claude-code-session-id']);
        },
      },
    });
    await withClaudeStack(async (_stack, home, trap) => {
      const sessionId = randomUUID();
      parseResult(await runClaude(home, stack.gateway.url, trap.url, ['-p', 'first turn: say hello', '--session-id', sessionId, '--output-format', 'json']));
      const second = parseResult(await runClaude(home, stack.gateway.url, trap.url, ['-p', 'second turn: say goodbye', '--resume', sessionId, '--output-format', 'json']));
      assert.equal(second.is_error, false);
      // Both turns named the session (the detector compared the second with the first).
      assert.ok(sessions.filter((s) => s === sessionId).length >= 2, `session headers seen: ${JSON.stringify(sessions)}`);
      const breaks = (await stack.gateway.metrics.promptCacheBreaks.get()).values;
      assert.deepEqual(breaks, [], `cache breaks counted: ${stack.logs.text()}`);
    }, stack);
  });

  test('failover: the primary answers 529 and Claude Code gets its answer from the secondary, bytes unchanged', { timeout: 60_000 }, async () => {
    const primary = await createMockUpstream();
    const secondary = await createMockUpstream();
    primary.setFaults({ status: 529 });
    const gateway = await startUpstreamsGateway([{ name: 'primary', url: primary.url }, { name: 'secondary', url: secondary.url, tier: 1 }], { LOG_LEVEL: 'warn' });
    const stack: Stack = {
      mock: secondary,
      gateway: gateway.gateway,
      config: gateway.config,
      logs: gateway.logs,
      client: (options) => gateway.client(options),
      close: async () => {
        await gateway.close();
        await primary.close();
        await secondary.close();
      },
    };
    await withClaudeStack(async (_stack, home, trap) => {
      const result = parseResult(await runClaude(home, gateway.gateway.url, trap.url, ['-p', 'failover turn: say hello', '--output-format', 'json']));
      assert.equal(result.is_error, false, 'no error reached Claude Code');
      assert.match(result.result ?? '', /^Mock reply to:/);
      const tried = primary.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages'));
      const served = secondary.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages'));
      assert.equal(served.length, 1, 'the secondary answered the turn');
      assert.ok(tried.length >= 1, 'the primary was tried first');
      assert.equal(served[0]?.path, tried[0]?.path, 'same path and query (?beta=true)');
      assert.equal(served[0]?.headers['anthropic-beta'], tried[0]?.headers['anthropic-beta'], 'every beta value travels');
      assert.equal(served[0]?.body, tried[0]?.body, 'the same body bytes');
    }, stack);
  });
});
