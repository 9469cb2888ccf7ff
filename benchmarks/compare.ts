import { fixedRate } from './load.js';
import { describeMachine, pinSelf, processCpuSeconds } from './machine.js';
import { pidOf, startBareProxy, startGateway, startGovernedGateway, startMock, type Running } from './processes.js';
import { plain1k, plain1m } from './workloads.js';

/**
 * Builds and settings against each other, in the same run: CPU µs per request of the bare
 * node:http + undici proxy, this build, optionally a base build and variants of this build with
 * other settings. Every body distinct; the proxies on CPU 0, mock and load on CPU 1.
 *
 *   git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci && npm run build)
 *   npm run build && node dist/benchmarks/compare.js [--base=/tmp/base/dist/src] [--variant='name:K=V;K=V' ...]
 *       [--rate=1000] [--seconds=1.5] [--rounds=20] [--size=1k|1m] [--env=K=V;K=V] [--fresh] [--governed]
 *
 * Steady (the default): every target is started once and warmed, then each round gives every target
 * one short window at `rate`, in a new random order per round. This machine has slow phases lasting
 * tens of seconds that add a similar number of µs to every request of every process; short windows
 * in shuffled order spread them over all targets alike, and the median of many rounds drops them.
 * `--fresh` starts each target anew for every round (2 s warm-up, `seconds` recorded): what a process
 * costs early in its life (V8 still tiering up, start-up objects still in the young generation).
 *
 * Reported per target: the median µs/req, its ratio to the bare proxy's median, the median of the
 * per-round differences to the bare proxy (the µs the target adds; steadier than a ratio, since slow
 * phases add to both sides) and every round.
 * `--env` applies to every gateway target; `--variant` adds this build again with more settings;
 * `--governed` adds this build with every request a governed key's (budget reservation, settle,
 * headers, ledger row: benchmarks/governed-main.ts), to read what governance adds per request; with
 * `--base` too, the base build governed as well, and for each build the median of the per-round
 * differences governed minus static key (what governance adds, before and after, in one run).
 */

type Args = Map<string, string[]>;
const args: Args = new Map();
for (const a of process.argv.slice(2)) {
  const [key, value] = a.replace(/^--/, '').split(/=(.*)/s, 2) as [string, string | undefined];
  args.set(key, [...(args.get(key) ?? []), value ?? '']);
}
const one = (key: string): string | undefined => args.get(key)?.at(-1);
const parseEnv = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split(';')
      .filter((kv) => kv.includes('='))
      .map((kv) => kv.split(/=(.*)/s, 2) as [string, string]),
  );

const base = one('base');
const fresh = args.has('fresh');
const rate = Number(one('rate') ?? '1000');
const seconds = Number(one('seconds') ?? (fresh ? '4' : '1.5'));
const rounds = Number(one('rounds') ?? (fresh ? '4' : '20'));
const make = one('size') === '1m' ? plain1m : plain1k;
const env = parseEnv(one('env') ?? '');

const BARE = 'bare node:http + undici';
/** A target's name and how to start it in front of the mock. */
type Target = [string, (mockUrl: string) => Promise<Running>];
const targets: Target[] = [[BARE, (u) => startBareProxy('0', u)]];
const BASE = `gateway base (${base})`;
const BASE_GOVERNED = 'base, governed key (budget reservation + ledger)';
const THIS = 'gateway this build';
const THIS_GOVERNED = 'this build, governed key (budget reservation + ledger)';
if (base !== undefined) targets.push([BASE, (u) => startGateway('0', u, env, [], base)]);
if (base !== undefined && args.has('governed')) targets.push([BASE_GOVERNED, (u) => startGovernedGateway('0', u, env, base)]);
targets.push([THIS, (u) => startGateway('0', u, env)]);
if (args.has('governed')) targets.push([THIS_GOVERNED, (u) => startGovernedGateway('0', u, env)]);
for (const spec of args.get('variant') ?? []) {
  const [name, settings] = spec.split(/:(.*)/s, 2) as [string, string | undefined];
  const extra = parseEnv(settings ?? '');
  targets.push([`this build, ${name}`, (u) => startGateway('0', u, { ...env, ...extra })]);
}

const machine = describeMachine();
pinSelf('1');
const mock = await startMock('1');
let offset = Math.floor(Math.random() * 1e9);
/** Distinct bodies across every window of the run. */
const nextBodies = (): number => (offset += 1_000_000);

async function measure(proxy: Running, warmupSeconds: number): Promise<number> {
  const pid = pidOf(proxy);
  let cpu0 = 0;
  let cpu1 = 0;
  const first = nextBodies();
  const r = await fixedRate(proxy.url, rate, seconds, (i) => make(first + i), {
    warmupSeconds,
    before: () => void (cpu0 = processCpuSeconds(pid)),
    after: () => void (cpu1 = processCpuSeconds(pid)),
  });
  return ((cpu1 - cpu0) * 1e6) / Math.max(1, r.sent - r.errors);
}

const results = new Map<string, number[]>(targets.map(([name]) => [name, []]));
const record = (name: string, us: number): void => void results.get(name)?.push(us);
if (fresh) {
  for (let round = 0; round < rounds; round++) {
    for (const [name, start] of targets) {
      const proxy = await start(mock.url);
      record(name, await measure(proxy, 2));
      await proxy.stop();
    }
  }
} else {
  const running: [string, Running][] = [];
  for (const [name, start] of targets) running.push([name, await start(mock.url)]);
  // Warm every target well past V8's tier-up before anything is recorded.
  for (const [, proxy] of running) {
    const first = nextBodies();
    await fixedRate(proxy.url, rate, 4, (i) => make(first + i), { warmupSeconds: 0 });
  }
  for (let round = 0; round < rounds; round++) {
    const order = [...running].sort(() => Math.random() - 0.5);
    for (const [name, proxy] of order) record(name, await measure(proxy, 0.3));
  }
  for (const [, proxy] of running) await proxy.stop();
}
await mock.stop();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const bare = results.get(BARE) ?? [];
const bareMedian = median(bare);
const out = (line: string): void => void process.stdout.write(line + '\n');
out(`machine: ${machine.cores} x ${machine.cpuModel}, Linux ${machine.kernel}, node ${machine.node}; ${new Date().toISOString()}`);
out(
  `${one('size') ?? '1k'} bodies at ${rate} req/s, ${fresh ? 'fresh processes' : 'steady (started once, warmed 4 s, shuffled windows)'}, ${rounds} rounds x ${seconds} s` +
    (Object.keys(env).length > 0 ? `, env ${JSON.stringify(env)}` : ''),
);
out('| target | CPU µs/req (median) | / bare | added over bare (median of rounds) | per round |');
out('|---|---|---|---|---|');
for (const [name, xs] of results) {
  const added = median(xs.map((x, i) => x - (bare[i] ?? NaN)));
  out(`| ${name} | ${median(xs).toFixed(0)} | ${(median(xs) / bareMedian).toFixed(2)}x | ${name === BARE ? '-' : `+${added.toFixed(0)}`} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
}
/** What the governed key adds over the static key of the same build: the median of per-round differences. */
for (const [governed, plain] of [[BASE_GOVERNED, BASE], [THIS_GOVERNED, THIS]] as const) {
  const g = results.get(governed);
  const p = results.get(plain);
  if (g === undefined || p === undefined) continue;
  out(`${governed} over ${plain}: +${median(g.map((x, i) => x - (p[i] ?? NaN))).toFixed(1)} µs CPU/req (median of rounds)`);
}
