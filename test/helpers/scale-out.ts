import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { deferred, until } from './deferred.js';
import { scrape, sum } from './prom.js';
import type { Gateway } from '../../src/server.js';
import type { LogCapture } from './log-capture.js';
import { startTestGateway, TEST_API_KEY } from './stack.js';

/** Helpers for tests with several gateway instances on one Redis. */

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** Resolves once `predicate` (async) holds; rejects loudly after `timeoutMs`. */
export async function eventually(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  let ok = false;
  let checking = false;
  let failure: unknown;
  const check = (): void => {
    if (checking) return;
    checking = true;
    predicate().then(
      (v) => {
        ok = v;
        checking = false;
      },
      (err: unknown) => {
        failure = err;
        checking = false;
      },
    );
  };
  await until(
    () => {
      if (failure !== undefined) throw failure instanceof Error ? failure : new Error(`${what}: the check failed`);
      if (!ok) check();
      return ok;
    },
    timeoutMs,
    what,
  );
}

/** The value of a metric summed over matching labels, scraped now. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sum(await scrape(url), name, labels);
}

/**
 * An in-process instance of a deployment on the Redis at `redisUrl` (undefined: `env` names it, e.g.
 * REDIS_CLUSTER_NODES), with the deployment's shared tenant hash key; `env` may add to it.
 */
export async function startInstance(upstreamUrl: string, redisUrl: string | undefined, env: Record<string, string> = {}, logs?: LogCapture): Promise<Gateway> {
  return startTestGateway({ UPSTREAM_URL: upstreamUrl, REDIS_URL: redisUrl, TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, ...env }, logs);
}

/** Resolves once every instance reports redis_available = `value` (1: it coordinates through Redis). */
export async function redisAvailable(gateways: { url: string }[], value = 1): Promise<void> {
  for (const gw of gateways) await eventually(async () => (await metric(gw.url, 'redis_available')) === value, 10_000, `redis_available to become ${value} on ${gw.url}`);
}

export interface PairOptions {
  upstreamUrl: string;
  /** Undefined when `env` names the Redis (REDIS_CLUSTER_NODES). */
  redisUrl: string | undefined;
  /** B's way to Redis when it is not A's (through a TCP proxy, to cut B alone). */
  redisUrlB?: string;
  env?: Record<string, string>;
  /** Where both instances log (a fresh capture each by default). */
  logs?: LogCapture;
  /** Also wait until every Redis connection of both (rate limits, cache) is up, not just the flights'. */
  allConnections?: boolean;
  /** Runs first when the pair ends, before the shutdowns: lets held upstream calls end so the instances can drain. */
  release?: () => void;
  /** Runs last, after both instances shut down: closes what the test started for them. */
  close?: () => Promise<void>;
}

/** Instances A and B in front of one upstream on one Redis, both on Redis before `run`; ended (release, shutdowns, close) whatever happens. */
export async function withPair(options: PairOptions, run: (a: Gateway, b: Gateway) => Promise<void>): Promise<void> {
  const started: Gateway[] = [];
  try {
    const a = await startInstance(options.upstreamUrl, options.redisUrl, options.env, options.logs);
    started.push(a);
    const b = await startInstance(options.upstreamUrl, options.redisUrlB ?? options.redisUrl, options.env, options.logs);
    started.push(b);
    await redisAvailable([a, b]);
    if (options.allConnections === true) for (const gw of [a, b]) await eventually(() => allRedisConnectionsUp(gw.url), 10_000, 'every Redis connection (rate limits, cache) to be up');
    await run(a, b);
  } finally {
    options.release?.();
    for (const gw of started) await gw.shutdown();
    await options.close?.();
  }
}

/** The cross-instance gauges this branch adds; all must return to zero when nothing is in flight. */
export const REMOTE_GAUGES = ['remote_flight_publishers', 'remote_flight_listeners', 'remote_flight_followers'] as const;

export async function remoteGaugesAtZero(url: string): Promise<boolean> {
  const samples = await scrape(url);
  // The scrape itself is the one active request.
  return REMOTE_GAUGES.every((g) => sum(samples, g) === 0) && sum(samples, 'http_active_requests') <= 1;
}

/** Every Redis connection of the instance (flights, reader, rate limits, cache) is in use. */
export async function allRedisConnectionsUp(url: string): Promise<boolean> {
  const domains = (await scrape(url)).filter((s) => s.name === 'redis_domain_available');
  return domains.length > 0 && domains.every((s) => s.value === 1);
}

export interface GatewayProcess {
  url: string;
  pid: number;
  /** Everything it logged so far (JSON lines). */
  readonly output: string;
  kill(): void;
  /** SIGSTOP: a stall (GC pause, VM freeze) that keeps every socket open. */
  pause(): void;
  resume(): void;
  exited: Promise<void>;
}

/** A whole gateway as its own process (so it can be stalled or really die). */
/** Every instance of one deployment hashes tenants with the same key (REDIS_URL requires it). */
export const SHARED_TENANT_HASH_KEY = 'scale-out-test-tenant-hash-key-0123456789';

export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = deferred();
  child.once('exit', () => exited.resolve());
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  try {
    await until(() => output.includes('gateway listening') && output.includes('redis connected'), 10_000, 'the gateway process to start on Redis');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const url = /"url":"(http:\/\/[^"]+)"/.exec(output)?.[1] as string;
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    url,
    pid: child.pid as number,
    get output() {
      return output;
    },
    kill: () => {
      if (!alive()) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    },
    pause: () => {
      if (alive()) child.kill('SIGSTOP');
    },
    resume: () => {
      if (alive()) child.kill('SIGCONT');
    },
    exited: exited.promise,
  };
}

export interface RawStream {
  /** The whole text received, with `[connection cut]` appended when the body did not end cleanly. */
  done: Promise<string>;
  /** Resolves once `bytes` characters arrived (1 by default). */
  received(bytes?: number): Promise<void>;
  /** Response headers, once they arrived. */
  headers: Promise<Record<string, string | string[] | undefined>>;
  /** The client goes away (closes its connection). */
  destroy(): void;
}

/** A streaming POST /v1/messages over a plain socket, kept as raw text. */
export function rawStream(url: string, body: string): RawStream {
  const done = deferred<string>();
  const headers = deferred<Record<string, string | string[] | undefined>>();
  let text = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  const req = request(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' } }, (res) => {
    headers.resolve(res.headers);
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      text += c;
      for (const w of [...waiters]) {
        if (text.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    res.on('end', () => done.resolve(text));
    res.on('error', () => done.resolve(text + '\n[connection cut]'));
    res.on('aborted', () => done.resolve(text + '\n[connection cut]'));
    res.on('close', () => done.resolve(text + (res.complete ? '' : '\n[connection cut]')));
  });
  req.on('error', (err) => {
    headers.reject(err);
    done.resolve(text + '\n[connection cut]');
  });
  headers.promise.catch(() => undefined);
  req.end(body);
  return {
    done: done.promise,
    headers: headers.promise,
    received: (n = 1) => {
      if (text.length >= n) return Promise.resolve();
      const d = deferred();
      waiters.push({ n, resolve: d.resolve });
      return d.promise;
    },
    destroy: () => req.destroy(),
  };
}

/** `promise`, or a loud failure naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
