import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import { createMockUpstream, type RecordedRequest } from '../../tools/mock-upstream/index.js';
import { deferred, eventually, until } from '../helpers/deferred.js';
import { freePort } from '../helpers/ports.js';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { parseMetrics, sum } from '../helpers/prom.js';
import { startRedis } from '../helpers/redis-server.js';
import { postgresForSuite } from '../helpers/postgres-server.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const PRETENURE_PROBE = fileURLToPath(new URL('../helpers/pretenure-probe.js', import.meta.url));
const MODULE_PROBE = fileURLToPath(new URL('../helpers/module-probe.js', import.meta.url));
const WASM_TIER_PROBE = fileURLToPath(new URL('../helpers/wasm-tier-probe.js', import.meta.url));
const COLLECTION_PROBE = fileURLToPath(new URL('../helpers/collection-probe.js', import.meta.url));
const COLLECTOR_THREADS_PROBE = fileURLToPath(new URL('../helpers/collector-threads-probe.js', import.meta.url));
const SECRET = 'sk-ant-process-secret-4242424242';

interface Running {
  child: ChildProcess;
  output: string[];
  url: Promise<string>;
}

/** `onOneCpu`: the process may run on CPU 0 alone (taskset, util-linux), as a pinned or cpuset-confined gateway does. */
function startMain(env: Record<string, string>, nodeArgs: string[] = [], onOneCpu = false): Running {
  const command = [process.execPath, ...nodeArgs, MAIN];
  const child = spawn(onOneCpu ? 'taskset' : process.execPath, onOneCpu ? ['-c', '0', ...command] : command.slice(1), {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const url = deferred<string>();
  // A pipe's chunk ends anywhere, mid-line too (V8's traces fill many 64 KiB reads): each stream's
  // unfinished last line waits for the rest of it, so a line is never tested in two pieces.
  const collectLines = (stream: NodeJS.ReadableStream): void => {
    let unfinished = '';
    const take = (line: string): void => {
      if (line === '') return;
      output.push(line);
      const match = /"url":"(http:\/\/[^"]+)"/.exec(line);
      if (match?.[1] !== undefined && line.includes('gateway listening')) url.resolve(match[1]);
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (unfinished + chunk).split('\n');
      unfinished = lines.pop() ?? '';
      lines.forEach(take);
    });
    stream.on('end', () => take(unfinished));
  };
  collectLines(child.stdout);
  collectLines(child.stderr);
  child.once('exit', () => url.reject(new Error(`gateway exited early:\n${output.join('\n')}`)));
  // Tests that expect an early exit never await the URL.
  url.promise.catch(() => undefined);
  return { child, output, url: url.promise };
}

/** One Messages request through the gateway at `url`, answered 200 and read to its end. */
async function askOnce(url: string, apiKey: string, content: string): Promise<void> {
  const answer = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' }, body: JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content }] }) });
  await answer.arrayBuffer();
  assert.equal(answer.status, 200);
}

/**
 * Starts the gateway (with `nodeArgs`, e.g. a preloaded probe), sends it one request (undici's parser,
 * the WebAssembly the gateway runs, compiled and run), asks the probe for its report (SIGUSR2) and
 * returns the JSON of its `<prefix> ` line.
 */
async function reportAfterOneRequest<T>(env: Record<string, string>, apiKey: string, nodeArgs: string[], prefix: string, onOneCpu = false): Promise<T> {
  const running = startMain(env, nodeArgs, onOneCpu);
  try {
    const url = await running.url;
    await askOnce(url, apiKey, 'hi');
    running.child.kill('SIGUSR2');
    const report = (): string | undefined => running.output.find((l) => l.startsWith(`${prefix} `));
    await until(() => report() !== undefined, 30_000, `the ${prefix} report`);
    return JSON.parse((report() ?? '').slice(prefix.length + 1)) as T;
  } finally {
    running.child.kill('SIGKILL');
    await once(running.child, 'exit');
  }
}

describe('the gateway process', () => {
  test('bad configuration stops start-up with a message naming the variable', async () => {
    const running = startMain({ PORT: 'eighty', LOG_LEVEL: 'chatty' });
    const [code] = (await once(running.child, 'exit')) as [number];
    assert.equal(code, 1);
    const text = running.output.join('\n');
    assert.match(text, /PORT must be a whole number/);
    assert.match(text, /LOG_LEVEL must be one of/);
  });

  test('an injected key without gateway keys refuses to start', async () => {
    const running = startMain({ ANTHROPIC_API_KEY: SECRET });
    const [code] = (await once(running.child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.match(running.output.join('\n'), /GATEWAY_API_KEYS/);
    assert.ok(!running.output.join('\n').includes(SECRET));
  });

  test('SIGTERM drains: readiness 503, the in-flight stream finishes, exit 0, no credential logged', async () => {
    const held = deferred();
    const arrived = deferred<RecordedRequest>();
    const mock = await createMockUpstream({
      onRequest: async (req) => {
        arrived.resolve(req);
        await held.promise;
      },
    });
    const running = startMain({ UPSTREAM_URL: mock.url, SHUTDOWN_DELAY_MS: '1500', SHUTDOWN_GRACE_MS: '20000' });
    try {
      const url = await running.url;
      const client = new Anthropic({ apiKey: SECRET, baseURL: url, maxRetries: 0 });
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200);

      const message = client.messages
        .stream({ model: 'claude-sonnet-5', max_tokens: 32, messages: [{ role: 'user', content: 'drain me' }] })
        .finalMessage();
      await arrived.promise;

      running.child.kill('SIGTERM');
      await until(() => running.output.some((l) => l.includes('"draining"')), 5_000, 'the drain to start');
      const draining = await fetch(`${url}/readyz`, { headers: { connection: 'close' } });
      assert.equal(draining.status, 503);
      assert.deepEqual(await draining.json(), { status: 'draining' });

      held.resolve();
      const final = await message;
      assert.equal(final.stop_reason === 'end_turn' || final.stop_reason === 'max_tokens', true);
      const [code] = (await once(running.child, 'exit')) as [number];
      assert.equal(code, 0);

      const text = running.output.join('\n');
      assert.ok(running.output.some((l) => l.includes('"path":"/v1/messages"') && l.includes('"status":200')), 'one request line was logged');
      assert.ok(!text.includes(SECRET), 'the client credential never reaches the logs');
    } finally {
      held.resolve();
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await mock.close();
    }
  });
});

describe('the gateway process: SIGTERM with the default SHUTDOWN_DELAY_MS=0', () => {
  test('the listener closes at once: /readyz is refused (no 503), while the in-flight call still finishes', async () => {
    const held = deferred();
    const arrived = deferred();
    const mock = await createMockUpstream({
      onRequest: async () => {
        arrived.resolve();
        await held.promise;
      },
    });
    const running = startMain({ UPSTREAM_URL: mock.url });
    try {
      const url = await running.url;
      const client = new Anthropic({ apiKey: SECRET, baseURL: url, maxRetries: 0 });
      const message = client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'hold me' }] });
      await arrived.promise;
      running.child.kill('SIGTERM');
      await until(() => running.output.some((l) => l.includes('"draining"')), 5_000, 'the drain to start');
      const refused = await fetch(`${url}/readyz`).then(
        (res) => `answered ${res.status}`,
        (err: unknown) => String((err as { cause?: { code?: string } }).cause?.code),
      );
      assert.equal(refused, 'ECONNREFUSED');
      held.resolve();
      assert.equal((await message).type, 'message');
      const [code] = (await once(running.child, 'exit')) as [number];
      assert.equal(code, 0);
    } finally {
      held.resolve();
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await mock.close();
    }
  });
});

describe('the gateway process: misconfiguration is loud', () => {
  test('a variable that is almost a known one (UPSTREAM_ULR) is named at start-up with the one it meant', async () => {
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_ULR: mock.url });
    try {
      await running.url;
      const warning = running.output.find((l) => l.includes('"variable":"UPSTREAM_ULR"'));
      assert.ok(warning !== undefined, `no warning names UPSTREAM_ULR:\n${running.output.join('\n')}`);
      assert.match(warning, /"level":"warn"/);
      assert.match(warning, /"closest":"UPSTREAM_URL"/);
      assert.ok(!running.output.some((l) => l.includes('"variable":"PATH"')), 'unrelated variables are not named');
    } finally {
      running.child.kill('SIGKILL');
      await once(running.child, 'exit');
      await mock.close();
    }
  });

  test('REDIS_URL: unreachable at start-up, then available, then gone: a warn line each time, naming the coordination mode', async () => {
    const redis = await startRedis();
    await redis.stop();
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url, REDIS_URL: redis.url, REDIS_RETRY_MS: '100', TENANT_HASH_KEY: 'process-test-tenant-hash-key-0123456789' });
    const warned = (text: string): boolean => running.output.some((l) => l.includes('"level":"warn"') && l.includes('"coordination":"redis"') && l.includes(text));
    try {
      await running.url;
      assert.ok(running.output.some((l) => l.includes('"coordination":"redis"') && l.includes('coordination: Redis, connecting')), 'the start-up line names the mode');
      await until(() => warned('Redis unreachable at start-up'), 10_000, 'a warning that Redis is unreachable');
      await redis.start();
      await until(() => warned('Redis available'), 10_000, 'a warning that Redis is available');
      await redis.stop();
      await until(() => warned('Redis unavailable'), 10_000, 'a warning that Redis went away');
      assert.ok(!running.output.join('\n').includes('process-test-tenant-hash-key'), 'the hash key is never logged');
    } finally {
      running.child.kill('SIGKILL');
      await once(running.child, 'exit');
      await mock.close();
      await redis.stop();
    }
  });
});

describe('the gateway process: V8 heap', () => {
  /**
   * Runs test/helpers/pretenure-probe.ts inside a started gateway: whether a literal site whose first
   * objects all survived ends up pretenured (a fresh object of it allocated straight in the old
   * generation). Asked of V8 per object, so no collection timing can change the answer.
   */
  const probePretenuring = async (nodeArgs: string[]): Promise<{ pretenured: boolean; objects: number }> => {
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url }, ['--allow-natives-syntax', '--import', PRETENURE_PROBE, ...nodeArgs]);
    try {
      await running.url;
      running.child.kill('SIGUSR2');
      const report = (): string | undefined => running.output.find((l) => l.startsWith('pretenure-probe '));
      await until(() => report() !== undefined, 30_000, 'the pretenure probe report');
      return JSON.parse((report() ?? '').slice('pretenure-probe '.length)) as { pretenured: boolean; objects: number };
    } finally {
      running.child.kill('SIGKILL');
      await once(running.child, 'exit');
      await mock.close();
    }
  };

  test('allocation-site pretenuring is off: objects that lived long while the gateway was busy do not send later ones straight to the old generation', async () => {
    const { pretenured, objects } = await probePretenuring([]);
    assert.equal(pretenured, false, `a site was pretenured after ${objects} surviving objects`);
  });

  test('an operator who passes --allocation-site-pretenuring to node gets it (and the probe sees the difference)', async () => {
    const { pretenured, objects } = await probePretenuring(['--allocation-site-pretenuring']);
    assert.equal(pretenured, true, `the site was still not pretenured after ${objects} surviving objects`);
  });

  /** `probe` preloaded in a gateway in front of a fresh mock, after one request: the JSON of its `<prefix> ` line. */
  const probeReport = async <T>(probe: string, prefix: string, nodeArgs: string[], onOneCpu = false): Promise<T> => {
    const mock = await createMockUpstream();
    try {
      return await reportAfterOneRequest<T>({ UPSTREAM_URL: mock.url }, SECRET, [...nodeArgs, '--import', probe], prefix, onOneCpu);
    } finally {
      await mock.close();
    }
  };

  /**
   * test/helpers/wasm-tier-probe.ts in a gateway that has answered one request: whether a hot
   * WebAssembly function gets recompiled by TurboFan, the tier-up whose compiler zones (about 36 MiB
   * for undici's parser) were left in a worker thread's malloc arena.
   */
  const probeWasmTier = async (nodeArgs: string[]): Promise<{ turbofan: boolean; liftoff: boolean }> => {
    const { turbofan, liftoff } = await probeReport<{ turbofan: boolean; liftoff: boolean }>(WASM_TIER_PROBE, 'wasm-tier-probe', ['--allow-natives-syntax', ...nodeArgs]);
    return { turbofan, liftoff };
  };

  test('WebAssembly stays on Liftoff: a hot function is not recompiled by TurboFan (no compiler zones left in a malloc arena)', async () => {
    const tier = await probeWasmTier([]);
    assert.deepEqual(tier, { turbofan: false, liftoff: true });
  });

  test('an operator who passes --no-liftoff-only to node gets the tier-up (and the probe sees the difference)', async () => {
    const tier = await probeWasmTier(['--no-liftoff-only']);
    assert.deepEqual(tier, { turbofan: true, liftoff: false });
  });

  /**
   * test/helpers/collector-threads-probe.ts in a gateway allowed CPU 0 alone, after one request: the
   * CPU time the process's other threads spent while V8 ran MAJOR_COLLECTIONS old-generation collections.
   */
  const probeCollectorThreads = (nodeArgs: string[]): Promise<{ majors: number; otherThreadsCpuMs: number }> =>
    probeReport<{ majors: number; otherThreadsCpuMs: number }>(COLLECTOR_THREADS_PROBE, 'collector-threads-probe', nodeArgs, true);

  test('on one CPU the collector works on the main thread: no marker or sweeper thread takes turns with requests', async () => {
    const { majors, otherThreadsCpuMs } = await probeCollectorThreads([]);
    assert.equal(majors, 4, 'the probe saw its old-generation collections');
    // Measured: 30-70 ms (compiler threads, the pause's marking helpers), against about 800 ms with V8's own threads (the next test).
    assert.ok(otherThreadsCpuMs <= 200, `other threads spent ${otherThreadsCpuMs} ms of CPU during four old-generation collections`);
  });

  test("an operator who names the collector's thread flags on node's command line gets V8's background threads back on one CPU (and the probe sees the difference)", async () => {
    // The flags src/v8-heap.ts turns off on one CPU, each named as V8's default has it.
    const named = ['--concurrent-marking', '--concurrent-sweeping', '--concurrent-array-buffer-sweeping', '--parallel-scavenge', '--parallel-compaction', '--parallel-pointer-update'];
    const { majors, otherThreadsCpuMs } = await probeCollectorThreads(named);
    assert.equal(majors, 4, 'the probe saw its old-generation collections');
    assert.ok(otherThreadsCpuMs >= 400, `other threads spent only ${otherThreadsCpuMs} ms of CPU during four old-generation collections`);
  });

  /**
   * The gateway's own request-path functions V8 reported compiled by TurboFan (`--trace-opt`, a
   * report only) after `requests` requests, one at a time; `settle` waits for them (compiles run on a
   * worker thread). Functions the edge runs once per request, named once in the gateway.
   */
  const REQUEST_PATH = ['attachContext', 'classifyRequest', 'memoMatches', 'readBodyThen'];
  const turbofannedAfter = async (requests: number, nodeArgs: string[], settle: boolean): Promise<string[]> => {
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url }, ['--trace-opt', ...nodeArgs]);
    const compiled = (): string[] => REQUEST_PATH.filter((name) => running.output.some((line) => line.includes('completed') && line.includes(`<JSFunction ${name} `) && line.includes('TURBOFAN')));
    try {
      const url = await running.url;
      for (let i = 0; i < requests; i++) {
        await askOnce(url, SECRET, `request ${i}`);
      }
      if (settle) await until(() => compiled().length === REQUEST_PATH.length, 15_000, `TurboFan for ${REQUEST_PATH.join(', ')} (compiled: ${compiled().join(', ')})`);
      return compiled();
    } finally {
      running.child.kill('SIGKILL');
      await once(running.child, 'exit');
      await mock.close();
    }
  };

  test('the request path reaches TurboFan within its first 400 requests (not thousands, as at V8\'s interrupt budget)', async () => {
    assert.deepEqual(await turbofannedAfter(400, [], true), REQUEST_PATH);
  });

  test('an operator who passes --interrupt-budget to node gets it (and the probe sees the difference)', async () => {
    // V8's own default: after as many requests, none of them is optimized yet.
    assert.deepEqual(await turbofannedAfter(400, ['--interrupt-budget=67584'], false), []);
  });

  test("start-up's garbage is collected (a memory-reducing collection, the young generation shrunk) once, before the gateway listens", async () => {
    const { collections } = await probeReport<{ collections: { listening: boolean }[] }>(COLLECTION_PROBE, 'collection-probe', []);
    assert.deepEqual(collections, [{ listening: false }]);
  });
});

describe('the gateway process: memory not used is not held', () => {
  /** Modules (packages, or the gateway's own by path) that only some configurations use. */
  const OPTIONAL = [
    '@aws-sdk/credential-providers',
    '@smithy/signature-v4',
    'google-auth-library',
    'src/upstream/kinds/bedrock.js',
    'src/upstream/kinds/vertex.js',
    'redis',
    'src/coordination/index.js',
    '@opentelemetry/sdk-node',
    '@electric-sql/pglite',
    'pg',
    'src/governance/index.js',
    'src/admin/server.js',
    'src/console/index.js',
    'yaml',
    'zod',
  ];
  /**
   * Modules no configuration needs at start-up: undici's index (the gateway takes its parts:
   * src/upstream/undici-parts.ts), Express (the system routes are plain node:http), and
   * express-rate-limit, loaded only when RATE_LIMIT_RPM is set.
   */
  const NOT_FOR_THE_DEFAULTS = ['undici/index.js', 'express', 'express-rate-limit'];

  /** The modules a started gateway has imported once it answered one request (test/helpers/module-probe.ts). */
  const loadedAfterOneRequest = (env: Record<string, string>, apiKey: string): Promise<string[]> =>
    reportAfterOneRequest<string[]>(env, apiKey, ['--import', MODULE_PROBE], 'module-probe');

  test("in front of Anthropic alone, the gateway loads no cloud SDK, Redis client, tracing SDK, database, admin API, console, YAML or schema parser, web framework, rate limiter or undici's index", async () => {
    const mock = await createMockUpstream();
    try {
      const loaded = await loadedAfterOneRequest({ UPSTREAM_URL: mock.url }, SECRET);
      assert.ok(loaded.includes('undici') && loaded.includes('src/server.js'), `the probe sees what the gateway imports: ${loaded.join(', ')}`);
      assert.deepEqual([...OPTIONAL, ...NOT_FOR_THE_DEFAULTS].filter((m) => loaded.includes(m)), []);
    } finally {
      await mock.close();
    }
  });

  test('each of them is loaded when the configuration uses it (Bedrock, Vertex, REDIS_URL, tracing, ADMIN_API_KEY, a YAML UPSTREAMS_FILE, RATE_LIMIT_RPM)', async () => {
    const redis = await startRedis();
    const mock = await createMockUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'cgw-lazy-'));
    const file = join(dir, 'upstreams.yaml');
    writeFileSync(
      file,
      [
        `- { name: primary, kind: anthropic, url: "${mock.url}", api_key_env: LAZY_ANTHROPIC_KEY }`,
        '- { name: bedrock, kind: bedrock, url: "http://127.0.0.1:9", region: us-east-1, bearer_token_env: LAZY_BEDROCK_TOKEN }',
        '- { name: vertex, kind: vertex, url: "http://127.0.0.1:9", region: us-east5, project: lazy-project }',
        '',
      ].join('\n'),
    );
    const gatewayKey = 'lazy-gateway-key-0123456789';
    try {
      const loaded = await loadedAfterOneRequest(
        {
          UPSTREAMS_FILE: file,
          LAZY_ANTHROPIC_KEY: SECRET,
          LAZY_BEDROCK_TOKEN: 'lazy-bedrock-token-0123456789',
          GATEWAY_API_KEYS: gatewayKey,
          REDIS_URL: redis.url,
          TENANT_HASH_KEY: 'process-test-tenant-hash-key-0123456789',
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
          ADMIN_API_KEY: 'lazy-admin-key-0123456789-0123456789',
          ADMIN_PORT: '0',
          GOVERNANCE_DATA_DIR: 'memory:',
          RATE_LIMIT_RPM: '1000',
        },
        gatewayKey,
      );
      // pg: only with DATABASE_URL (this configuration's store is the embedded PGlite).
      assert.deepEqual([...OPTIONAL, 'express-rate-limit'].filter((m) => m !== 'pg' && !loaded.includes(m)), []);
    } finally {
      await mock.close();
      await redis.stop();
    }
  });
});

describe('request logs on stdout', () => {
  test('lines are batched, yet a quiet gateway\'s line reaches stdout within a few LOG_FLUSH_MS periods, while it runs', async () => {
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url, LOG_LEVEL: 'info' });
    try {
      // The start-up line is short too: it also needs the periodic flush. Bounded, so a held line fails loudly.
      let timer: NodeJS.Timeout | undefined;
      const url = await Promise.race([
        running.url,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('the "gateway listening" line did not reach stdout within 5 s')), 5_000);
        }),
      ]).finally(() => clearTimeout(timer));
      const client = new Anthropic({ apiKey: SECRET, baseURL: url, maxRetries: 0 });
      await client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'log me' }] });
      // One short line is far below the batch size: only the periodic flush can write it.
      await until(() => running.output.some((l) => l.includes('"path":"/v1/messages"') && l.includes('"status":200')), 3_000, 'the request line on stdout');
      assert.equal(running.child.exitCode, null, 'written while running, not by the exit hook');
    } finally {
      running.child.kill('SIGKILL');
      await mock.close();
    }
  });
});

/** Resolves with the exit code, or fails loudly after `ms`. */
async function exitWithin(child: ChildProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`process did not exit within ${ms} ms`)), ms);
  });
  try {
    const [code] = (await Promise.race([once(child, 'exit'), timeout])) as [number | null];
    return code;
  } finally {
    clearTimeout(timer);
  }
}

describe('the gateway process under hostile surroundings', () => {
  test('SIGTERM exits within SHUTDOWN_GRACE_MS and its margin even when stdout\'s reader is gone (EPIPE)', async () => {
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url, SHUTDOWN_GRACE_MS: '500', LOG_LEVEL: 'debug' });
    try {
      const url = await running.url;
      // The log reader dies (a crashed shipper, `| head`): every later write to stdout fails with EPIPE.
      running.child.stdout?.destroy();
      const client = new Anthropic({ apiKey: SECRET, baseURL: url, maxRetries: 0 });
      for (let i = 0; i < 20; i++) await client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: `log line ${i}` }] });
      running.child.kill('SIGTERM');
      await exitWithin(running.child, 10_000);
    } finally {
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await mock.close();
    }
  });
});

describe('WORKERS', () => {
  test('workers that keep crashing are restarted with backoff, then the supervisor stops at its crash budget', async () => {
    // The port is taken by someone else: every worker fails to listen and exits.
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url, WORKERS: '2', PORT: String(port) });
    try {
      const code = await exitWithin(running.child, 30_000);
      assert.equal(code, 1);
      const text = running.output.join('\n');
      assert.match(text, /starting another in \d+ ms/);
      assert.match(text, /exceed the crash budget/);
    } finally {
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await new Promise((r) => blocker.close(r));
      await mock.close();
    }
  });

  test('WORKERS=2 runs two gateway processes on one port and drains both on SIGTERM', async () => {
    const port = await freePort();
    const mock = await createMockUpstream();
    const running = startMain({ UPSTREAM_URL: mock.url, WORKERS: '2', PORT: String(port) });
    try {
      await until(() => running.output.filter((l) => l.includes('gateway listening')).length === 2, 10_000, 'two workers to listen');
      const pids = new Set(running.output.filter((l) => l.includes('gateway listening')).map((l) => (JSON.parse(l) as { pid: number }).pid));
      assert.equal(pids.size, 2, 'two distinct worker processes');
      const client = new Anthropic({ apiKey: SECRET, baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 });
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => client.messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: `w${i}` }] })));
      assert.equal(answers.length, 8);
      running.child.kill('SIGTERM');
      const [code] = (await once(running.child, 'exit')) as [number];
      assert.equal(code, 0);
    } finally {
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await mock.close();
    }
  });
});

/** Stops a gateway started with WORKERS (SIGTERM, SIGKILL past 15 s) and its mock. */
const stopWorkers = async (running: Running, mock: { close(): Promise<void> }): Promise<void> => {
  running.child.kill('SIGTERM');
  await exitWithin(running.child, 15_000).catch(() => running.child.kill('SIGKILL'));
  await mock.close();
};
/** Starts a gateway with `workers` processes and waits until every one of them listens. */
const startWorkers = async (workers: number, upstream: string): Promise<{ running: Running; url: string }> => {
  const port = await freePort();
  const running = startMain({ UPSTREAM_URL: upstream, WORKERS: String(workers), PORT: String(port) });
  await until(() => running.output.filter((l) => l.includes('gateway listening')).length === workers, 15_000, `${workers} workers to listen`);
  return { running, url: `http://127.0.0.1:${port}` };
};
/** N distinct requests, each on its own connection (node:cluster hands connections round-robin to the workers). */
const sendDistinct = async (url: string, n: number): Promise<{ input: number; output: number; cacheCreation: number; cacheRead: number }> => {
  const billed = { input: 0, output: 0, cacheCreation: 0, cacheRead: 0 };
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: `aggregate me ${i}` }] });
    const answer = await rawExchange(url, rawRequest('POST', '/v1/messages', { 'x-api-key': SECRET, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }, body));
    assert.equal(answer.status, 200, answer.body);
    const { usage } = JSON.parse(answer.body) as { usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number } };
    billed.input += usage.input_tokens;
    billed.output += usage.output_tokens;
    billed.cacheCreation += usage.cache_creation_input_tokens;
    billed.cacheRead += usage.cache_read_input_tokens;
  }
  return billed;
};
const scrapeText = async (url: string): Promise<string> => {
  const answer = await rawExchange(url, rawRequest('GET', '/metrics'));
  assert.equal(answer.status, 200, answer.body);
  return answer.body;
};
const listening = (running: Running): { pid: number; worker?: string }[] =>
  running.output.filter((l) => l.includes('gateway listening')).map((l) => JSON.parse(l) as { pid: number; worker?: string });
/** promtool's lint lines for an exposition (exit 3 with lines on stdout/stderr when it has any). */
const promtoolLint = (text: string): string[] => {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.ok(result.status === 0 || result.status === 3, `promtool failed: ${result.stderr}`);
  return `${result.stdout}${result.stderr}`.split('\n').filter((l) => l !== '').sort();
};

describe('WORKERS rate limits', () => {
  test('WORKERS=2 without Redis: RATE_LIMIT_RPM holds across the workers (the supervisor counts for all of them)', async () => {
    const mock = await createMockUpstream();
    const port = await freePort();
    const RPM = 6;
    const running = startMain({ UPSTREAM_URL: mock.url, WORKERS: '2', PORT: String(port), RATE_LIMIT_RPM: String(RPM) });
    try {
      await until(() => listening(running).length === 2, 30_000, 'two workers to listen');
      // The window is a minute: begin with at least 20 s of it left, so all twelve calls count in one.
      await until(() => Date.now() % 60_000 < 40_000, 25_000, 'a minute with 20 s left');
      const minute = Math.floor(Date.now() / 60_000);
      const statuses: number[] = [];
      for (let i = 0; i < 2 * RPM; i++) {
        // Each on a connection of its own: node:cluster hands them to the workers in turn.
        const body = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: `limited ${i}` }] });
        statuses.push((await rawExchange(`http://127.0.0.1:${port}`, rawRequest('POST', '/v1/messages', { 'x-api-key': SECRET, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }, body))).status);
      }
      assert.equal(Math.floor(Date.now() / 60_000), minute, 'every call in one minute');
      assert.deepEqual(statuses, [...Array<number>(RPM).fill(200), ...Array<number>(RPM).fill(429)]);
    } finally {
      await stopWorkers(running, mock);
    }
  });
});

describe('WORKERS metrics', () => {
  test('WORKERS=2: every scrape reads the whole gateway (counters equal what both workers did)', async () => {
    const mock = await createMockUpstream();
    const { running, url } = await startWorkers(2, mock.url);
    try {
      const n = 20;
      const billed = await sendDistinct(url, n);
      assert.equal(mock.requests.length, n, 'distinct bodies: one upstream call each');
      // Both workers served some of the requests (their request lines carry their slot).
      await until(() => running.output.filter((l) => l.includes('"path":"/v1/messages"')).length === n, 5_000, 'every request line');
      const servedBy = new Set(running.output.filter((l) => l.includes('"path":"/v1/messages"')).map((l) => (JSON.parse(l) as { worker?: string }).worker));
      assert.deepEqual([...servedBy].sort(), ['0', '1']);
      // Each scrape lands on either worker; each must read all n.
      for (let scrape = 0; scrape < 6; scrape++) {
        const samples = parseMetrics(await scrapeText(url));
        assert.equal(sum(samples, 'http_requests_total', { route: '/v1/messages', status: '200' }), n, `scrape ${scrape}: http_requests_total`);
        assert.equal(sum(samples, 'http_request_duration_seconds_count', { route: '/v1/messages' }), n, `scrape ${scrape}: request histogram count`);
        assert.equal(sum(samples, 'http_request_duration_seconds_bucket', { route: '/v1/messages', le: '+Inf' }), n, `scrape ${scrape}: request histogram +Inf bucket`);
        assert.equal(sum(samples, 'claude_api_calls_total', { status: '200' }), n, `scrape ${scrape}: claude_api_calls_total`);
        assert.equal(sum(samples, 'claude_tokens_total', { type: 'input' }), billed.input, `scrape ${scrape}: input tokens`);
        assert.equal(sum(samples, 'claude_tokens_total', { type: 'output' }), billed.output, `scrape ${scrape}: output tokens`);
        assert.equal(sum(samples, 'claude_tokens_total', { type: 'cache_creation' }), billed.cacheCreation, `scrape ${scrape}: cache_creation tokens`);
        assert.equal(sum(samples, 'claude_tokens_total', { type: 'cache_read' }), billed.cacheRead, `scrape ${scrape}: cache_read tokens`);
        // Process metrics stay per worker: one series each, not a sum.
        const heap = samples.filter((s) => s.name === 'nodejs_heap_size_used_bytes');
        assert.deepEqual(heap.map((s) => s.labels.worker).sort(), ['0', '1'], `scrape ${scrape}: heap per worker`);
        // No series is summed into a lie: one breaker-state value and redis_available are not added up.
        assert.ok(samples.filter((s) => s.name === 'circuit_breaker_state').every((s) => s.value >= 0 && s.value <= 2), `scrape ${scrape}: breaker state is a state`);
      }
      // A worker dies; its replacement takes its slot, and the gateway's counters do not fall.
      const victim = listening(running).find((l) => l.worker === '0');
      assert.ok(victim !== undefined, 'worker 0 logged its pid');
      process.kill(victim.pid, 'SIGKILL');
      await until(() => listening(running).length === 3, 15_000, 'a replacement worker to listen');
      assert.equal(listening(running)[2]?.worker, '0', 'the replacement takes the slot of the worker it replaces');
      for (let scrape = 0; scrape < 4; scrape++) {
        const samples = parseMetrics(await scrapeText(url));
        assert.equal(sum(samples, 'http_requests_total', { route: '/v1/messages', status: '200' }), n, `after the crash, scrape ${scrape}: http_requests_total`);
        assert.equal(sum(samples, 'claude_api_calls_total', { status: '200' }), n, `after the crash, scrape ${scrape}: claude_api_calls_total`);
        assert.equal(sum(samples, 'claude_tokens_total', { type: 'output' }), billed.output, `after the crash, scrape ${scrape}: output tokens`);
        assert.deepEqual(samples.filter((s) => s.name === 'nodejs_heap_size_used_bytes').map((s) => s.labels.worker).sort(), ['0', '1'], `after the crash, scrape ${scrape}: live workers only`);
      }
    } finally {
      running.child.kill('SIGTERM');
      await exitWithin(running.child, 15_000).catch(() => running.child.kill('SIGKILL'));
      await mock.close();
    }
  });
});

describe('WORKERS governance', () => {
  const postgres = postgresForSuite();
  const ADMIN = 'admin-key-for-workers-0123456789abcdef';
  const governedWorkers = async (mockUrl: string): Promise<{ running: Running; url: string; admin: string }> => {
    const port = await freePort();
    const adminPort = await freePort();
    const env = { UPSTREAM_URL: mockUrl, WORKERS: '2', PORT: String(port), DATABASE_URL: postgres.url, ADMIN_API_KEY: ADMIN, ADMIN_PORT: String(adminPort), GATEWAY_API_KEYS: SECRET, ANTHROPIC_API_KEY: 'sk-ant-held-workers-0123456789', GOVERNANCE_POLL_MS: '100' };
    const running = startMain(env);
    await until(() => listening(running).length === 2, 30_000, 'two workers to listen');
    return { running, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}` };
  };

  /** A team and a key of it with `fields` (budgets, limits) through the admin API; the key's secret once both workers know it. */
  const governedKey = async (url: string, admin: string, fields: Record<string, unknown>): Promise<{ key: string; admitted: number }> => {
    const adminHeaders = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const team = await rawExchange(admin, rawRequest('POST', '/admin/teams', adminHeaders, JSON.stringify({ name: `workers-${Date.now()}-${Math.random()}` })));
    assert.equal(team.status, 201, team.body);
    const teamId = (JSON.parse(team.body) as { id: string }).id;
    const created = await rawExchange(admin, rawRequest('POST', '/admin/keys', adminHeaders, JSON.stringify({ team_id: teamId, name: 'governed', ...fields })));
    assert.equal(created.status, 201, created.body);
    const key = (JSON.parse(created.body) as { secret: string }).secret;
    // Both workers know the key (each polls the store): four free calls in a row on connections of their own.
    let known = 0;
    let admitted = 0;
    await eventually(
      async () => {
        const answer = await rawExchange(url, rawRequest('GET', '/v1/models', { 'x-api-key': key, 'anthropic-version': '2023-06-01' }));
        known = answer.status === 200 ? known + 1 : 0;
        if (answer.status === 200) admitted++;
        return known >= 4;
      },
      10_000,
      'both workers to know the key',
    );
    // `admitted`: the probes the key's limits counted (a request per minute each).
    return { key, admitted };
  };
  const ask = (url: string, key: string, content: string): Promise<{ status: number; body: string }> =>
    rawExchange(url, rawRequest('POST', '/v1/messages', { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }, JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content }] })));

  test('WORKERS=2 without Redis: a key\'s requests per minute hold across the workers', async () => {
    const mock = await createMockUpstream();
    const { running, url, admin } = await governedWorkers(mock.url);
    try {
      const RPM = 12;
      // The window is a UTC minute: begin with at least 20 s of it left, so the probes and the calls count in one.
      await until(() => Date.now() % 60_000 < 40_000, 25_000, 'a minute with 20 s left');
      const minute = Math.floor(Date.now() / 60_000);
      const { key, admitted } = await governedKey(url, admin, { limits: { requests_per_minute: RPM } });
      assert.ok(admitted < RPM, `the probes took ${admitted} of the minute's ${RPM}`);
      const statuses: number[] = [];
      for (let i = admitted; i < 2 * RPM; i++) statuses.push((await ask(url, key, `rpm ${i}`)).status);
      assert.equal(Math.floor(Date.now() / 60_000), minute, 'every call in one minute');
      assert.deepEqual(statuses, [...Array<number>(RPM - admitted).fill(200), ...Array<number>(RPM).fill(429)]);
    } finally {
      await stopWorkers(running, mock);
    }
  });

  test("WORKERS=2: a key's max_concurrent holds across the workers (the supervisor holds the slots, and frees them)", async () => {
    // An upstream that holds every Messages call until `hold` resolves (a model still answering), and answers the rest at once.
    const hold = deferred();
    let held = 0;
    const upstream = createHttpServer((req, res) => {
      req.resume();
      const answer = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url?.startsWith('/v1/messages') !== true) return answer({ data: [], has_more: false, first_id: null, last_id: null });
      held++;
      void hold.promise.then(() => answer({ id: 'msg_held', type: 'message', role: 'assistant', model: 'claude-sonnet-5', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const mock = { close: () => new Promise<void>((resolve) => upstream.close(() => resolve())) };
    const { running, url, admin } = await governedWorkers(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    try {
      const { key } = await governedKey(url, admin, { limits: { max_concurrent: 1 } });
      const first = ask(url, key, 'held');
      await until(() => held === 1, 10_000, 'the first call to reach the upstream');
      // Four more while it runs, each on a connection of its own (the workers take turns): none may start.
      const others: number[] = [];
      for (let i = 0; i < 4; i++) others.push((await ask(url, key, `while held ${i}`)).status);
      assert.deepEqual(others, [429, 429, 429, 429]);
      assert.equal(held, 1, 'no second call reached the upstream');
      hold.resolve();
      assert.equal((await first).status, 200);
      // The slot comes back when the first response is over.
      await eventually(async () => (await ask(url, key, 'after')).status === 200, 5_000, 'the slot to be given back');
    } finally {
      hold.resolve();
      await stopWorkers(running, mock);
    }
  });

  test('WORKERS=2 without Redis: a key\'s token budget holds across the workers (the supervisor keeps the counters), never spent twice over', async (t) => {
    const mock = await createMockUpstream();
    const { running, url, admin } = await governedWorkers(mock.url);
    try {
      const BUDGET_TOKENS = 400;
      const { key } = await governedKey(url, admin, { budgets: [{ period: 'day', tokens: BUDGET_TOKENS }] });
      // One call at a time, each on a connection of its own (the workers take turns), until three in a row are refused.
      let billed = 0;
      let refusedInRow = 0;
      for (let i = 0; i < 120 && refusedInRow < 3; i++) {
        const answer = await ask(url, key, `budget ${i}`);
        if (answer.status === 200) {
          refusedInRow = 0;
          const { usage } = JSON.parse(answer.body) as { usage: { input_tokens: number; output_tokens: number } };
          billed += usage.input_tokens + usage.output_tokens;
        } else {
          assert.equal(answer.status, 403, answer.body);
          refusedInRow++;
        }
      }
      assert.equal(refusedInRow, 3, `the budget ran out (billed ${billed})`);
      assert.ok(billed <= BUDGET_TOKENS, `billed ${billed} tokens against a budget of ${BUDGET_TOKENS}`);
      t.diagnostic(`billed ${billed} tokens against a budget of ${BUDGET_TOKENS}`);
    } finally {
      await stopWorkers(running, mock);
    }
  });

  /** A console session on `admin`: its cookie. */
  const consoleLogin = async (admin: string): Promise<string> => {
    const login = await rawExchange(admin, rawRequest('POST', '/console/login', { 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams({ key: ADMIN }).toString()));
    assert.equal(login.status, 303, login.body);
    const cookie = (login.headers['set-cookie'] ?? '').split(';', 1)[0] ?? '';
    assert.notEqual(cookie, '');
    return cookie;
  };

  test('WORKERS=2: one worker serves the admin listener, so a console login holds on every connection, and its live reading counts what every worker did', async () => {
    const mock = await createMockUpstream();
    const { running, url, admin } = await governedWorkers(mock.url);
    try {
      const n = 12;
      await sendDistinct(url, n);
      const cookie = await consoleLogin(admin);
      // Each reading on a connection of its own: node:cluster would hand them to the workers in turn.
      for (let reading = 0; reading < 6; reading++) {
        const live = await rawExchange(admin, rawRequest('GET', '/console/api/live', { cookie }));
        assert.equal(live.status, 200, `reading ${reading}: ${live.body}`);
        const snapshot = JSON.parse(live.body) as { overview: { upstreamCalls: number } };
        assert.equal(snapshot.overview.upstreamCalls, n, `reading ${reading}: upstream calls of every worker`);
      }
      // The admin worker dies: its replacement takes the slot and the admin listener (sessions, in its memory, start anew).
      const adminWorker = listening(running).find((l) => l.worker === '0');
      assert.ok(adminWorker !== undefined, 'worker 0 logged its pid');
      process.kill(adminWorker.pid, 'SIGKILL');
      await until(() => listening(running).length === 3, 15_000, 'a replacement worker to listen');
      const live = await rawExchange(admin, rawRequest('GET', '/console/api/live', { cookie: await consoleLogin(admin) }));
      assert.equal(live.status, 200, live.body);
      assert.equal((JSON.parse(live.body) as { overview: { upstreamCalls: number } }).overview.upstreamCalls, n, 'what the dead worker counted stays counted');
    } finally {
      await stopWorkers(running, mock);
    }
  });
});

describe('WORKERS metrics: deadline and exposition', () => {
  test('WORKERS=2: a worker that does not answer fails the scrape with 503 (never a smaller sum), and scrapes recover when it does', async () => {
    const mock = await createMockUpstream();
    const { running, url } = await startWorkers(2, mock.url);
    const stopped = listening(running)[0];
    assert.ok(stopped !== undefined);
    try {
      await sendDistinct(url, 4);
      process.kill(stopped.pid, 'SIGSTOP');
      // A stopped worker takes at most one connection (it never acknowledges it), so of two scrapes at
      // least one reaches the running worker, which must give up on the stopped one by its deadline.
      const scrapes = [0, 1].map(() => rawExchange(url, rawRequest('GET', '/metrics'), 30_000));
      const first = await Promise.race(scrapes);
      assert.equal(first.status, 503, first.body);
      const error = JSON.parse(first.body) as { type: string; error: { type: string; message: string } };
      assert.equal(error.type, 'error');
      assert.match(error.error.message, /1 of 2 workers did not send their metrics within 3000 ms/);
      process.kill(stopped.pid, 'SIGCONT');
      for (const answer of await Promise.all(scrapes)) assert.ok(answer.status === 200 || answer.status === 503, `${answer.status}`);
      // Both answer again: the whole gateway's counts.
      const samples = parseMetrics(await scrapeText(url));
      assert.equal(sum(samples, 'http_requests_total', { route: '/v1/messages', status: '200' }), 4);
    } finally {
      try {
        process.kill(stopped.pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
      running.child.kill('SIGTERM');
      await exitWithin(running.child, 15_000).catch(() => running.child.kill('SIGKILL'));
      await mock.close();
    }
  });

  test('promtool check metrics finds nothing more in the aggregated exposition (WORKERS=2) than in one process\'s (WORKERS=1)', async () => {
    const mock = await createMockUpstream();
    const lint: string[][] = [];
    try {
      for (const workers of [1, 2]) {
        const { running, url } = await startWorkers(workers, mock.url);
        try {
          await sendDistinct(url, 4);
          lint.push(promtoolLint(await scrapeText(url)));
        } finally {
          running.child.kill('SIGTERM');
          await exitWithin(running.child, 15_000).catch(() => running.child.kill('SIGKILL'));
        }
      }
      assert.deepEqual(lint[1], lint[0]);
    } finally {
      await mock.close();
    }
  });
});

describe('the gateway process: operator options', () => {
  const run = async (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  };

  test('--help, --version and --print-config answer and exit 0 without listening', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /BREAKER_RESET_TIMEOUT_MS {2}\[default: 30000\]/);
    const version = await run(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^claude-gateway \d+\.\d+\.\d+\n$/);
    const printed = await run(['--print-config'], { ANTHROPIC_API_KEY: SECRET, GATEWAY_API_KEYS: 'gateway-key-0123456789', PORT: '0' });
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, /^ANTHROPIC_API_KEY=<redacted>/m);
    assert.ok(!printed.stdout.includes(SECRET) && !printed.stdout.includes('gateway-key-0123456789'));
    assert.ok(!printed.stdout.includes('gateway listening') && !printed.stderr.includes('gateway listening'));
  });

  test('--print-config shows no part of any Redis password, however the URL spells it; one TENANT_HASH_KEY rule for REDIS_URL and REDIS_CLUSTER_NODES', async () => {
    const TENANT_HASH_KEY = 'print-config-tenant-hash-key-0123456789';
    // Passwords with a raw `@` (WHATWG reads up to the last `@` before the host) and a raw `,`.
    const passwords = ['Qz7@Xk9w', 'Jm4@Vb2y@Hr8t', 'Lp3,Ws6n'];
    const cases: Record<string, string>[] = [
      { REDIS_URL: `redis://gateway:${passwords[0]}@redis.internal:6379/0` },
      { REDIS_URL: `rediss://:${passwords[2]}@redis.internal:6380` },
      { REDIS_CLUSTER_NODES: `redis://gateway:${passwords[0]}@10.0.0.1:7000,rediss://gateway:${passwords[1]}@10.0.0.2:7001, 10.0.0.3:7002` },
    ];
    for (const env of cases) {
      const printed = await run(['--print-config'], { ...env, TENANT_HASH_KEY, PORT: '0' });
      assert.equal(printed.code, 0, printed.stderr);
      const [name] = Object.keys(env) as [string];
      assert.match(printed.stdout, new RegExp(`^${name}=rediss?://(?:gateway)?:<redacted>@`, 'm'));
      for (const password of passwords) {
        for (let i = 0; i + 3 <= password.length; i++) {
          const part = password.slice(i, i + 3);
          assert.ok(!printed.stdout.includes(part) && !printed.stderr.includes(part), `${name}: "${part}" of a password printed`);
        }
      }
      // Without TENANT_HASH_KEY, either variable is refused the same way, naming both variables and no value.
      const refused = await run(['--print-config'], { ...env, PORT: '0' });
      assert.equal(refused.code, 1, `${name} without TENANT_HASH_KEY is refused`);
      assert.equal(refused.stdout, '');
      assert.match(refused.stderr, new RegExp(`${name} is set but TENANT_HASH_KEY is not`));
      for (const password of passwords) assert.ok(!refused.stderr.includes(password.slice(0, 3)));
    }
    // What the WHATWG parser cannot read is refused, naming the variable, echoing nothing of it.
    const unparseable: Record<string, string>[] = [{ REDIS_URL: 'redis://gateway:Tn5/Gc1q@redis.internal:6379' }, { REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis://gateway:Tn5/Gc1q@10.0.0.2:7001' }];
    for (const env of unparseable) {
      const refused = await run(['--print-config'], { ...env, TENANT_HASH_KEY, PORT: '0' });
      const [name] = Object.keys(env) as [string];
      assert.equal(refused.code, 1, `${name}: an unparseable URL is refused`);
      assert.match(refused.stderr, new RegExp(`${name} must be`));
      assert.ok(!refused.stderr.includes('Tn5') && !refused.stderr.includes('Gc1q'));
    }
  });

  test('an unknown option exits 2 with usage', async () => {
    const result = await run(['--serve']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown option "--serve"/);
  });
});
