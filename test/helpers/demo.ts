import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { deferred } from './deferred.js';
import { REPO_ROOT } from './k6.js';

/** A demo (dist/tools/demo/main.js) running as its own process, once its banner is printed. */
export interface RunningDemo<B> {
  child: ChildProcessByStdio<null, Readable, Readable>;
  banner: B;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

export interface DemoOptions<B> {
  /** Named in the failure when no banner comes ("the tiers demo printed no banner"). */
  name: string;
  /** The environment the demo inherits (the caller's, without what would pick another upstream or real credentials). */
  baseEnv: NodeJS.ProcessEnv;
  /** The banner read from everything printed so far, or undefined while it is incomplete. */
  parseBanner(stdout: string): B | undefined;
}

/** The caller's environment without the variables `drop` rejects by name. */
export function envWithout(drop: (name: string) => boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!drop(k)) env[k] = v;
  return env;
}

/** Starts the demo with `args` on free loopback ports; resolves with its banner, or fails loudly (exit, or no banner within 20 s) after stopping it. */
export async function startDemo<B>(args: string[], options: DemoOptions<B>, env: Record<string, string> = {}): Promise<RunningDemo<B>> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/tools/demo/main.js'), ...args], {
    env: { ...options.baseEnv, PORT: '0', MOCK_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = deferred<B>();
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
    const banner = options.parseBanner(out);
    if (banner !== undefined) ready.resolve(banner);
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  child.once('exit', (code) => ready.reject(new Error(`demo exited ${String(code)}: ${err}`)));
  const timer = setTimeout(() => ready.reject(new Error(`the ${options.name} demo printed no banner within 20 s:\n${out}${err}`)), 20_000);
  const stop = async (): Promise<void> => {
    clearTimeout(timer);
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  };
  try {
    return { child, banner: await ready.promise, stop };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
