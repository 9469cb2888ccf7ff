import { fixedRate } from './load.js';
import { describeMachine, pinSelf, processCpuSeconds } from './machine.js';
import { pidOf, startBareProxy, startGateway, startMock, type Running } from './processes.js';
import { plain1k, plain1m } from './workloads.js';

/**
 * Base against branch, in the same run: CPU µs per request of the bare node:http + undici proxy, a
 * base build of the gateway and this build, interleaved round by round so that whatever else the
 * machine does hits all three alike. Every body distinct; the proxy on CPU 0, mock and load on CPU 1.
 *
 *   git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci && npm run build)
 *   npm run build && node dist/benchmarks/compare.js --base=/tmp/base/dist/src [--rate=1000] [--seconds=4] [--rounds=4] [--size=1k|1m] [--env=K=V;K=V]
 *
 * `--env` applies to both gateway builds (e.g. `--env=LOG_LEVEL=warn` to see what logging costs).
 */

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split(/=(.*)/s, 2) as [string, string]));
const base = args.get('base');
if (base === undefined) {
  process.stderr.write('usage: node dist/benchmarks/compare.js --base=<another build>/dist/src [--rate=1000] [--seconds=4] [--rounds=4] [--size=1k|1m] [--env=K=V;K=V]\n');
  process.exit(2);
}
const rate = Number(args.get('rate') ?? '1000');
const seconds = Number(args.get('seconds') ?? '4');
const rounds = Number(args.get('rounds') ?? '4');
const make = args.get('size') === '1m' ? plain1m : plain1k;
const env = Object.fromEntries((args.get('env') ?? '').split(';').filter((kv) => kv.includes('=')).map((kv) => kv.split(/=(.*)/s, 2) as [string, string]));

const machine = describeMachine();
pinSelf('1');
const targets: [string, (mockUrl: string) => Promise<Running>][] = [
  ['bare node:http + undici', (u) => startBareProxy('0', u)],
  [`gateway base (${base})`, (u) => startGateway('0', u, env, [], base)],
  ['gateway this build', (u) => startGateway('0', u, env)],
];
const results = new Map<string, number[]>();
const mock = await startMock('1');
for (let round = 0; round < rounds; round++) {
  for (const [name, start] of targets) {
    const proxy = await start(mock.url);
    const pid = pidOf(proxy);
    let cpu0 = 0;
    let cpu1 = 0;
    const offset = Math.floor(Math.random() * 1e9);
    const r = await fixedRate(proxy.url, rate, seconds, (i) => make(offset + i), {
      warmupSeconds: 2,
      before: () => void (cpu0 = processCpuSeconds(pid)),
      after: () => void (cpu1 = processCpuSeconds(pid)),
    });
    await proxy.stop();
    const us = ((cpu1 - cpu0) * 1e6) / Math.max(1, r.sent - r.errors);
    results.set(name, [...(results.get(name) ?? []), us]);
  }
}
await mock.stop();
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const bare = mean(results.get('bare node:http + undici') ?? [NaN]);
const out = (line: string): void => void process.stdout.write(line + '\n');
out(`machine: ${machine.cores} x ${machine.cpuModel}, Linux ${machine.kernel}, node ${machine.node}; ${new Date().toISOString()}`);
out(`${args.get('size') ?? '1k'} bodies at ${rate} req/s, ${rounds} rounds x ${seconds} s${Object.keys(env).length > 0 ? `, env ${JSON.stringify(env)}` : ''}`);
out('| target | CPU µs/req (mean) | / bare | per round |');
out('|---|---|---|---|');
for (const [name, xs] of results) out(`| ${name} | ${mean(xs).toFixed(0)} | ${(mean(xs) / bare).toFixed(2)}x | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
