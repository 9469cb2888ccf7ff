import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The mock's CLI (`npm run mock`), built. */
export const MOCK_MAIN = fileURLToPath(new URL('../../tools/mock-upstream/main.js', import.meta.url));

function spawnMock(env: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [MOCK_MAIN], { env: { ...process.env, MOCK_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The mock's CLI with `env` over the caller's environment (MOCK_PORT 0), run until it exits: its exit code and its stderr. */
export async function runMockUntilExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawnMock(env);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

export interface MockProcess {
  /** Its first log line, the one that says where it listens. */
  log: { url: string; controlUrl?: string };
  /** SIGTERM; resolves with its exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL if it still runs (for `finally`). */
  kill(): void;
}

/** The mock's CLI with `env` over the caller's environment (MOCK_PORT 0), once it has logged where it listens. */
export async function startMockProcess(env: Record<string, string>): Promise<MockProcess> {
  const child = spawnMock(env);
  const kill = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    return {
      log: JSON.parse(line.toString('utf8').trim()) as MockProcess['log'],
      stop: async () => {
        child.kill('SIGTERM');
        const [code] = (await once(child, 'exit')) as [number | null];
        return code;
      },
      kill,
    };
  } catch (err) {
    kill();
    throw err;
  }
}
