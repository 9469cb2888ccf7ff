import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { forSuite } from './suite.js';
import { eventually } from './deferred.js';

/**
 * A private PostgreSQL for tests: Debian's `postgresql` package (binaries in /usr/lib/postgresql/<v>/bin,
 * not on PATH), `initdb` into a temporary directory, one server on a free loopback port with its
 * socket in that directory. As root both run as the `postgres` user (PostgreSQL refuses root).
 * Only the process started here is ever signalled.
 */
export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication, loopback only). */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown (SIGINT; SIGKILL after 10 s): the data stays, as after a crash-free restart. */
  stop(): Promise<void>;
  /** Starts it again (after stop) on the same port and data directory. */
  start(): Promise<void>;
}

export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions[0] === undefined) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: apt-get install postgresql (scripts/ensure-setup.mjs --tests does)');
  return join(root, versions[0], 'bin');
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** The command line that runs `binary` as the postgres user when this process is root. */
const command = (binary: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args]);

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'cgw-postgres-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const [initCmd, initArgs] = command(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  execFileSync(initCmd, initArgs, { stdio: 'ignore' });
  const port = await freePort();
  const [cmd, args] = command(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=50']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async (): Promise<void> => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    child = c;
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    try {
      await eventually(async () => {
        if (c.exitCode !== null) throw new Error(`postgres exited with ${c.exitCode}`);
        return accepts(url);
      }, 30_000, 'the test PostgreSQL to accept connections');
    } catch (err) {
      const pid = postmasterPid();
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
      c.kill('SIGKILL');
      throw err;
    }
  };
  /**
   * The server's own pid, from postmaster.pid: runuser does not pass signals on to it, so the
   * server is signalled directly (it is the process this helper started, under runuser or not).
   */
  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    if (c === undefined) return;
    child = undefined;
    const pid = postmasterPid() ?? c.pid;
    if (pid === undefined) return;
    // SIGINT: PostgreSQL's fast shutdown; SIGKILL past the deadline.
    process.kill(pid, 'SIGINT');
    try {
      await eventually(() => Promise.resolve(!alive(pid)), 10_000, 'the test PostgreSQL to stop');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
    await exited;
  };
  await start();
  return { url, port, start, stop };
}

/** One PostgreSQL for the enclosing suite: started before its tests, stopped after them (see `forSuite`). */
export function postgresForSuite(): PostgresServer {
  return forSuite(() => startPostgres(), (server) => server.stop(), "the suite's PostgreSQL");
}
