import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { forSuite } from './suite.js';

/**
 * Real redis-servers for tests, on free loopback ports, each in its own temporary directory, no
 * persistence. Only processes started here are ever signalled (SIGSTOP/SIGCONT/SIGKILL by pid).
 */
export interface RedisServer {
  url: string;
  port: number;
  /** Process id of the running server (undefined while stopped). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets open and answers nothing (a stall, not a crash). */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
}

export interface RedisServerOptions {
  /** Extra redis-server arguments (after the defaults). */
  args?: string[];
  /** Serve TLS only, with a certificate generated for 127.0.0.1 (see `tls`). */
  tls?: boolean;
  /** An ACL user `name` with `password` and full rights; the default user is disabled. */
  aclUser?: { name: string; password: string };
}

export interface TlsMaterial {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
}

/** A throw-away CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI. */
export function makeTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'cgw-redis-tls-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=cgw-test-ca']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf']);
  const caFile = join(dir, 'ca.crt');
  return { dir, caFile, certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), ca: execFileSync('cat', [caFile]).toString() };
}

async function ping(port: number, tls: TlsMaterial | undefined, auth: RedisServerOptions['aclUser']): Promise<boolean> {
  return new Promise((resolve) => {
    const hello = auth === undefined ? 'PING\r\n' : `AUTH ${auth.name} ${auth.password}\r\nPING\r\n`;
    const socket = tls === undefined ? createConnection({ port, host: '127.0.0.1' }, () => socket.write(hello)) : tlsConnect({ port, host: '127.0.0.1', ca: tls.ca }, () => socket.write(hello));
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('+PONG') || seen.includes('-')) {
        socket.destroy();
        resolve(seen.includes('+PONG'));
      }
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer & { tls: TlsMaterial | undefined }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cgw-redis-'));
  const tls = options.tls === true ? makeTlsMaterial() : undefined;
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  if (tls === undefined) args.unshift('--port', String(port));
  else args.unshift('--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no');
  if (options.aclUser !== undefined) {
    const aclFile = join(dir, 'users.acl');
    writeFileSync(aclFile, `user default off\nuser ${options.aclUser.name} on >${options.aclUser.password} ~* &* +@all\n`);
    args.push('--aclfile', aclFile);
  }
  args.push(...(options.args ?? []));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn('redis-server', args, { stdio: 'ignore' });
    child = c;
    for (let i = 0; i < 200; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode} (args: ${args.join(' ')})`);
      if (await ping(port, tls, options.aclUser)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start');
  };
  await start();
  const scheme = tls === undefined ? 'redis' : 'rediss';
  const auth = options.aclUser === undefined ? '' : `${encodeURIComponent(options.aclUser.name)}:${encodeURIComponent(options.aclUser.password)}@`;
  return {
    url: `${scheme}://${auth}127.0.0.1:${port}`,
    port,
    tls,
    get pid() {
      return child?.exitCode === null ? child.pid : undefined;
    },
    start,
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    stop: async () => {
      const c = child;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT');
      c.kill('SIGKILL');
      await exited;
    },
  };
}

/** One redis-server for the enclosing suite: started before its tests, stopped after them (see `forSuite`). */
export function redisForSuite(options: RedisServerOptions = {}): RedisServer & { tls: TlsMaterial | undefined } {
  return forSuite(() => startRedis(options), (server) => server.stop(), 'the suite\'s redis-server');
}

/** A real Redis Cluster of three masters (no replicas) on free local ports. */
export interface RedisCluster {
  /** Seed nodes as host:port, comma-separated (the REDIS_CLUSTER_NODES form). */
  nodes: string;
  servers: RedisServer[];
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const servers: (RedisServer & { tls: TlsMaterial | undefined })[] = [];
  try {
    // The cluster bus port is chosen free too (below the ephemeral range, as every test port is): by default it is the
    // port + 10000, which lands in the ephemeral range, where an outgoing connection may hold it and fail the start.
    const busPorts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const busPort = String(await freePort());
      busPorts.push(busPort);
      servers.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-port', busPort, '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000'] }));
    }
    const cli = (port: number, ...args: string[]): string => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]).toString();
    const ranges: [number, number][] = [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ];
    servers.forEach((s, i) => cli(s.port, 'CLUSTER', 'ADDSLOTSRANGE', String(ranges[i]?.[0]), String(ranges[i]?.[1])));
    // MEET names the bus port: without it a node assumes port + 10000.
    for (const s of servers.slice(1)) cli(s.port, 'CLUSTER', 'MEET', '127.0.0.1', String(servers[0]?.port), busPorts[0] as string);
    // The cluster is usable once every node agrees that it is ok and knows all three masters.
    for (let i = 0; ; i++) {
      const ok = servers.every((s) => cli(s.port, 'CLUSTER', 'INFO').includes('cluster_state:ok') && cli(s.port, 'CLUSTER', 'INFO').includes('cluster_known_nodes:3'));
      if (ok) break;
      if (i > 400) throw new Error('redis cluster did not become ok');
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return {
    nodes: servers.map((s) => `127.0.0.1:${s.port}`).join(','),
    servers,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
