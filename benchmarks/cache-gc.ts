import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { median } from './load.js';
import { describeMachine, pinSelf } from './machine.js';
import { startGateway, startMock } from './processes.js';
import { plain1k } from './workloads.js';

/**
 * What storing answers costs the collector, in figures a loaded machine does not move much: the
 * gateway with `CACHE` off and on (and a base build's, with --base), each started anew with V8's
 * `--trace-gc-nvp`, takes the same number of distinct 1 KB requests in a closed loop at a fixed
 * concurrency; then the bytes its scavenges promoted to the old generation per request, and the
 * collections and their pause time per request (medians of runs). Latency (`npm run bench -- --only=cache-p99`) is the
 * figure that matters; this is the profile behind it, readable when the machine is too busy for latency.
 *
 *   npm run build && node dist/benchmarks/cache-gc.js [--base=<another build's dist/src>] [--requests=20000] [--reps=3]
 */

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const base = args.get('base');
const requests = Number(args.get('requests') ?? '20000');
const reps = Number(args.get('reps') ?? '3');
const CONCURRENCY = 8;
const THIS_SRC = fileURLToPath(new URL('../src/', import.meta.url));

interface GcFigures {
  promotedBytesPerRequest: number;
  scavenges: number;
  scavengePauseUsPerRequest: number;
  markCompacts: number;
  markCompactPauseUsPerRequest: number;
}

/** Sums --trace-gc-nvp lines (`pause=<ms> ... gc=s|mc ... promoted=<bytes>`). */
function gcFigures(text: string, count: number): GcFigures {
  let scavenges = 0;
  let scavengePause = 0;
  let promoted = 0;
  let markCompacts = 0;
  let markCompactPause = 0;
  for (const line of text.split('\n')) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    const pause = Number(/\bpause=([0-9.]+)/.exec(line)?.[1] ?? NaN);
    if (kind === undefined || Number.isNaN(pause)) continue;
    if (kind === 's') {
      scavenges++;
      scavengePause += pause;
      promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
    } else if (kind === 'mc') {
      markCompacts++;
      markCompactPause += pause;
    }
  }
  return {
    promotedBytesPerRequest: promoted / count,
    scavenges,
    scavengePauseUsPerRequest: (scavengePause * 1000) / count,
    markCompacts,
    markCompactPauseUsPerRequest: (markCompactPause * 1000) / count,
  };
}

/** One gateway, started anew on CPU 0 with its collections traced, `requests` distinct requests through it. */
async function run(distSrc: string, cache: 'off' | 'on', mockUrl: string, first: number): Promise<GcFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'cgw-cache-gc-'));
  const log = join(dir, 'gc.log');
  const fd = openSync(log, 'w');
  try {
    // Request logs off: stdout carries the collector's lines only.
    const gateway = await startGateway('0', mockUrl, { LOG_LEVEL: 'warn', CACHE: cache }, ['--trace-gc-nvp'], distSrc, 'main.js', fd);
    try {
      const pool = new Pool(gateway.url, { connections: CONCURRENCY });
      let n = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (n < requests) {
            const r = plain1k(first + n++);
            const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
          }
        }),
      );
      await pool.close();
    } finally {
      await gateway.stop();
    }
  } finally {
    closeSync(fd);
  }
  const figures = gcFigures(readFileSync(log, 'utf8'), requests);
  rmSync(dir, { recursive: true, force: true });
  return figures;
}

const machine = describeMachine();
pinSelf('1');
const mock = await startMock('1');
const builds: [string, string][] = [...(base === undefined ? [] : [['base', base] as [string, string]]), ['this build', THIS_SRC]];
const results = new Map<string, GcFigures[]>();
let first = Math.floor(Math.random() * 1e9);
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const [build, distSrc] of builds) {
      for (const cache of ['off', 'on'] as const) {
        const name = `${build}, CACHE=${cache}`;
        results.set(name, [...(results.get(name) ?? []), await run(distSrc, cache, mock.url, (first += 1_000_000))]);
      }
    }
  }
} finally {
  await mock.stop();
}
const out = (line: string): void => void process.stdout.write(line + '\n');
out(`machine: ${machine.cores} x ${machine.cpuModel}, node ${machine.node}; ${new Date().toISOString()}`);
out(`${requests} distinct 1 KB requests per run, closed loop, ${CONCURRENCY} at a time; each gateway started anew on CPU 0 with --trace-gc-nvp; median of ${reps} runs (runs interleaved)`);
if (base !== undefined) out(`base build: ${base}`);
out('| gateway | promoted B/req | scavenges | scavenge pause µs/req | mark-compacts | mark-compact pause µs/req | promoted B/req per run |');
out('|---|---|---|---|---|---|---|');
for (const [name, runs] of results) {
  const f = (k: keyof GcFigures, digits: number): string => median(runs.map((r) => r[k])).toFixed(digits);
  out(`| ${name} | ${f('promotedBytesPerRequest', 0)} | ${f('scavenges', 0)} | ${f('scavengePauseUsPerRequest', 1)} | ${f('markCompacts', 1)} | ${f('markCompactPauseUsPerRequest', 1)} | ${runs.map((r) => r.promotedBytesPerRequest.toFixed(0)).join(', ')} |`);
}
out('Promoted bytes follow the request count more than the clock (a stall of a busy machine still raises a run\'s figure: requests in flight survive); pauses are wall time.');
