import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

/**
 * V8 settings for the gateway process. Imported first by main.ts, so they hold before any request
 * code runs (and in every WORKERS process, each of which runs main.ts). Each one yields to an operator
 * who names it on node's command line.
 *
 * Allocation-site pretenuring is off. V8 watches the object and array literals each code site
 * allocates; when most of them survive young-generation collections, it decides, once and for
 * good, to allocate that site's objects directly in the old generation. A gateway that starts under
 * load (a restart during a rollout, a burst on a fresh process) keeps every request's objects alive
 * far longer than usual while its code is cold, and while the lingering window's catch-up holds
 * answers (COALESCE_LINGER_CATCHUP_MS): V8 then pretenures the per-request sites (header pairs,
 * heads, answers) for the rest of the process's life. Measured: 0.6 MB promoted per scavenge instead
 * of 0.1 MB, scavenges twice as long, about 40-50 µs more CPU per request at 1 KB, 10 s after the
 * start-up had passed. Nearly everything a proxy allocates dies with its request, so the decision
 * helps nothing here. An operator who wants it back passes `--allocation-site-pretenuring` to node.
 *
 * WebAssembly stays on Liftoff, V8's baseline compiler. The only WebAssembly the gateway runs is
 * undici's HTTP/1.1 parser (llhttp), one large state-machine function. Soon after the first
 * upstream answer, V8 recompiles it with TurboFan on a platform worker thread, which mallocs about
 * 36 MiB of compiler zones for it; freed, that memory stays in the worker thread's glibc arena in
 * many starts (about 10 MiB more idle RSS). The parser's share of a request's CPU is small either
 * way (`compare.js`, same run: no worse). The same holds for the governance store's PGlite (a
 * WebAssembly Postgres): it starts faster and holds about 100 MiB less without the tier-up, its
 * queries no slower (CHANGELOG, issue 30). `--no-liftoff-only` on node's command line restores it.
 *
 * On one CPU, the collector works on the main thread alone. V8 marks the old generation and sweeps
 * on background threads while the program runs, and scavenges and compacts with helper threads, sized
 * for the machine's cores. A process allowed one CPU (its affinity: taskset, a cpuset) has them take
 * turns with the main thread in the scheduler's slices of milliseconds: a request waits whole slices
 * while a marker thread runs, and the main thread's own steps wait for background sweeps to finish.
 * Measured on a pinned gateway with `CACHE=on` at 1,000 req/s (`--trace-gc-nvp`): about 70 ms of
 * background marking per old-generation cycle and incremental steps up to 8-24 ms long, against
 * steps of at most 0.6 ms and no background marking when the main thread does it all in small steps;
 * the process's CPU time about the same (benchmarks/HISTORY.md, 2026-12-07 afternoon). With more than one CPU the
 * threads run beside the main thread, so nothing changes. Not `--single-threaded-gc`, which V8 only
 * takes at start-up, nor `--no-parallel-marking`, which breaks V8 11's marker when changed after
 * start: the flags below are read at each collection. A CPU quota (a container's `--cpus`) does not
 * show in the affinity node 20 reports: there, an operator passes `--single-threaded-gc` to node.
 *
 * The request path reaches TurboFan within its first few hundred requests. V8 optimizes a function
 * once it has run its bytecode for about three interrupt budgets (66 KB each by default). The
 * gateway's request path is a few hundred small functions, each run once or twice per request: at
 * V8's budget they stay in the interpreter and baseline code for thousands of requests, and at a
 * modest rate (a team's gateway, any gateway for a while after a restart) every request pays for
 * it. Measured (`--trace-opt`, 400 streams): 102 functions optimized against 298 with a 4,000-byte
 * budget, none of the edge's (readBodyThen, classifyRequest, fingerprintOf) among them; a stream's
 * first byte came 0.29-0.45 ms after the bare proxy's, even after 1,500 streams, against
 * 0.12-0.13 ms. Each function still deoptimizes and re-optimizes as V8 decides (once each, in that
 * run). Set at the first request, when start-up is over: start-up runs the module loader and the
 * configuration code once, and with the lower budget V8 optimized those too, for about 6 MiB more
 * idle RSS (measured). V8 reads the budget each time it resets a function's, so it holds from then on.
 */
const PRETENURING = 'allocation-site-pretenuring';
const LIFTOFF_ONLY = 'liftoff-only';

const INTERRUPT_BUDGET = 'interrupt-budget';
/** Bytes of bytecode a function runs per tier-up tick (V8's default: 67,584). */
const REQUEST_PATH_INTERRUPT_BUDGET = 4_000;

/** Whether node's command line names this V8 flag (`--flag`, `--no-flag`, `--flag=value`; `_` or `-`). */
const named = (flag: string): boolean => process.execArgv.some((arg) => /^--(?:no-)?([^=]*)/.exec(arg)?.[1]?.replaceAll('_', '-') === flag);
if (!named(PRETENURING)) setFlagsFromString(`--no-${PRETENURING}`);
if (!named(LIFTOFF_ONLY)) setFlagsFromString(`--${LIFTOFF_ONLY}`);
if (!named(INTERRUPT_BUDGET)) {
  const FIRST_REQUEST = 'http.server.request.start';
  const atFirstRequest = (): void => {
    unsubscribe(FIRST_REQUEST, atFirstRequest);
    setFlagsFromString(`--${INTERRUPT_BUDGET}=${REQUEST_PATH_INTERRUPT_BUDGET}`);
  };
  subscribe(FIRST_REQUEST, atFirstRequest);
}

const COLLECTOR_THREADS = ['concurrent-marking', 'concurrent-sweeping', 'concurrent-array-buffer-sweeping', 'parallel-scavenge', 'parallel-compaction', 'parallel-pointer-update'];
if (availableParallelism() === 1) for (const flag of COLLECTOR_THREADS) if (!named(flag)) setFlagsFromString(`--no-${flag}`);
