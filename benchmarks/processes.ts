import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { freePort } from '../test/helpers/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Processes under benchmark: each pinned to a CPU with taskset when available, loopback only. */

const DIST_SRC = fileURLToPath(new URL('../src/', import.meta.url));
/** The mock upstream's build: a test tool, outside the gateway's dist/src. */
const DIST_MOCK = fileURLToPath(new URL('../tools/mock-upstream/', import.meta.url));

export interface Running {
  name: string;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}


function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TASKSET = hasTaskset();

function pinned(cpu: string, command: string, args: string[]): [string, string[]] {
  return TASKSET ? ['taskset', ['-c', cpu, command, ...args]] : [command, args];
}

async function waitHttp(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not come up`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    // Gone already: exited, or killed by a signal (then exitCode stays null and no 'exit' is coming).
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
}

export async function startMock(cpu: string, env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const [cmd, args] = pinned(cpu, process.execPath, [join(DIST_MOCK, 'main.js')]);
  const child = spawn(cmd, args, { env: { ...process.env, MOCK_PORT: String(port), MOCK_HOST: '127.0.0.1', ...env }, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/_mock/stats`);
  return { name: 'mock', url, child, stop: stopper(child) };
}

/**
 * `distSrc`: another build's dist/src (benchmarks/compare.ts runs a base build beside this one).
 * `stdout`: a file descriptor for the gateway's standard output (e.g. V8's `--trace-gc-nvp` lines), else ignored.
 */
export async function startGateway(
  cpu: string,
  upstreamUrl: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  distSrc = DIST_SRC,
  entry = 'main.js',
  stdout: 'ignore' | number = 'ignore',
): Promise<Running> {
  const port = await freePort();
  const [cmd, args] = pinned(cpu, process.execPath, [...nodeArgs, join(distSrc, entry)]);
  const child = spawn(cmd, args, {
    // With UPSTREAMS the upstreams are the caller's (UPSTREAM_URL and UPSTREAMS exclude each other).
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', ...(env.UPSTREAMS === undefined ? { UPSTREAM_URL: upstreamUrl } : {}), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', stdout, 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  // The governance store's first start (PGlite compiling its WebAssembly) takes seconds on a busy machine.
  await waitHttp(`${url}/healthz`, 60_000);
  return { name: 'gateway', url, child, stop: stopper(child) };
}

/**
 * This build (or the build whose dist/src is `distSrc`) with governance on, every request a governed
 * key's (benchmarks/governed-main.ts, beside dist/src in dist/benchmarks).
 */
export async function startGovernedGateway(cpu: string, upstreamUrl: string, env: Record<string, string> = {}, distSrc = DIST_SRC, nodeArgs: string[] = []): Promise<Running> {
  return startGateway(cpu, upstreamUrl, env, nodeArgs, join(distSrc, '..', 'benchmarks'), 'governed-main.js');
}

/** The bare node:http + undici proxy (benchmarks/bare-proxy.ts): the floor for a Node proxy. `env` is added to this process's. */
export async function startBareProxy(cpu: string, upstreamUrl: string, nodeArgs: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const script = fileURLToPath(new URL('./bare-proxy.js', import.meta.url));
  const [cmd, args] = pinned(cpu, process.execPath, [...nodeArgs, script, upstreamUrl, String(port)]);
  const child = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const up = await fetch(url, { method: 'POST', body: '{}' }).then((r) => r.arrayBuffer().then(() => true), () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return { name: 'bare node+undici', url, child, stop: stopper(child) };
}

/**
 * nginx as a reverse proxy with upstream keep-alive and no response buffering: the reference proxy.
 * A private config, prefix and pid file in a temporary directory, on a free loopback port; never the
 * system service. Undefined when nginx is not installed (Debian: `apt-get install nginx`).
 */
export async function startNginx(cpu: string, upstreamUrl: string): Promise<Running | undefined> {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cgw-nginx-'));
  const port = await freePort();
  const upstream = new URL(upstreamUrl).host;
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_rlimit_nofile 65536;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 32768; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream mock { server ${upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 32m;
    client_body_buffer_size 2m;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`,
  );
  const [cmd, args] = pinned(cpu, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
  const child = spawn(cmd, args, { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/_mock/stats`);
  return { name: 'nginx', url, child, stop: stopper(child) };
}

/** The process to read CPU and memory of (taskset execs, so the pid is the proxy itself). */
export function pidOf(r: Running): number {
  if (r.child.pid === undefined) throw new Error(`${r.name} has no pid`);
  return r.child.pid;
}

/** A throwaway redis-server (no persistence) on a free port, or undefined when not installed. */
export async function startRedisServer(): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cgw-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return { url: `redis://127.0.0.1:${port}`, stop: stopper(child) };
}
