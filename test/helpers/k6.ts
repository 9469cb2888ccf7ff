import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const LOAD_TESTS = join(REPO_ROOT, 'load-tests');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where k6 is: `K6_BIN`, else `k6` on PATH, else `<repo>/../shared/tools/k6` (where developer
 * machines and CI keep a k6 v0.48 built from source). A K6_BIN that is set but not executable is
 * an error, not a reason to look elsewhere. Undefined when there is none.
 */
export function findK6(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.K6_BIN?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!executable(fromEnv)) throw new Error(`K6_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, 'k6'))) return join(dir, 'k6');
  }
  const shared = join(REPO_ROOT, '..', 'shared', 'tools', 'k6');
  return executable(shared) ? shared : undefined;
}

export interface K6Result {
  /** k6's exit code: 0 all thresholds passed, 99 a threshold failed, others: errors. */
  code: number | null;
  output: string;
  /** Thresholds that failed, as `metric: expression` (from --summary-export). */
  failedThresholds: string[];
  /** Every thresholded metric's values from --summary-export (k6's legacy summary format). */
  metrics: Record<string, Record<string, unknown>>;
}

/**
 * Runs `k6 run <script>` with `-e` variables and a deadline: past `timeoutMs` the k6 process
 * (ours) is killed and the promise rejects, naming the script. No usage report leaves the machine.
 */
export async function runK6(k6: string, script: string, vars: Record<string, string>, timeoutMs: number): Promise<K6Result> {
  const dir = mkdtempSync(join(tmpdir(), 'claude-gateway-k6-'));
  const summaryPath = join(dir, 'summary.json');
  const args = ['run', '--quiet', '--no-color', '--no-usage-report', `--summary-export=${summaryPath}`];
  for (const [name, value] of Object.entries(vars)) args.push('-e', `${name}=${value}`);
  args.push(script.startsWith('/') ? script : join(LOAD_TESTS, script));
  const child = spawn(k6, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, K6_NO_USAGE_REPORT: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => chunks.push(c));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`k6 run ${script} did not finish within ${timeoutMs} ms:\n${Buffer.concat(chunks).toString('utf8')}`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const output = Buffer.concat(chunks).toString('utf8');
    let metrics: Record<string, Record<string, unknown>> = {};
    try {
      metrics = (JSON.parse(readFileSync(summaryPath, 'utf8')) as { metrics: typeof metrics }).metrics;
    } catch {
      // k6 failed before writing a summary; `code` and `output` tell why.
    }
    const failedThresholds: string[] = [];
    for (const [metric, values] of Object.entries(metrics)) {
      const thresholds = values.thresholds as Record<string, boolean> | undefined;
      // Legacy summary format: true means the threshold was crossed (failed).
      for (const [expression, failed] of Object.entries(thresholds ?? {})) if (failed) failedThresholds.push(`${metric}: ${expression}`);
    }
    return { code, output, failedThresholds, metrics };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The suite's short settings per script; each run takes a few seconds. */
export const SHORT = {
  smoke: { DURATION_S: '1', PAUSE_S: '0.1' },
  coalescing: { VUS: '6', BURSTS: '2', WINDOW_MS: '400', LATENCY_MS: '200' },
  breaker: {
    RATE: '20',
    PRE_ALLOCATED_VUS: '4',
    MAX_VUS: '20',
    OUTAGE_START_S: '1',
    OUTAGE_S: '2.5',
    TRIP_GRACE_S: '1',
    HEAL_GRACE_S: '0.5',
    RECOVERY_S: '1.5',
    BREAKER_WINDOW_MS: '1000',
    BREAKER_RESET_TIMEOUT_MS: '1000',
  },
  rateLimit: { RATE_LIMIT_RPM: '20', DURATION_S: '3', HAMMER_RPM: '1200', SECOND_RPM: '60', PRE_ALLOCATED_VUS: '4', MAX_VUS: '20' },
  failover: {
    RATE: '20',
    PRE_ALLOCATED_VUS: '4',
    MAX_VUS: '20',
    OUTAGE_START_S: '1',
    OUTAGE_S: '2',
    SWITCH_GRACE_S: '0.5',
    HEAL_GRACE_S: '0.5',
    RECOVERY_S: '1.5',
    BREAKER_RESET_TIMEOUT_MS: '1000',
  },
} as const;

/** The gateway settings each short run assumes (the same values the script is given). */
export const GATEWAY_ENV = {
  breaker: { BREAKER_WINDOW_MS: '1000', BREAKER_RESET_TIMEOUT_MS: '1000', BREAKER_VOLUME_THRESHOLD: '5', RETRY_ON_OVERLOADED: 'false' },
  rateLimit: { RATE_LIMIT_RPM: '20' },
  failover: { BREAKER_WINDOW_MS: '1000', BREAKER_RESET_TIMEOUT_MS: '1000', BREAKER_VOLUME_THRESHOLD: '5' },
} as const;

/** What a failed run's assertion message shows: exit code, crossed thresholds, k6's last output. */
export function explain(result: K6Result): string {
  return `k6 exit ${String(result.code)}; failed thresholds: ${result.failedThresholds.join(', ') || 'none'}\n${result.output.slice(-4000)}`;
}


/** Deadline of one k6 run in the suite (each takes a few seconds; a busy machine may triple that). */
export const RUN_DEADLINE_MS = 40_000;
