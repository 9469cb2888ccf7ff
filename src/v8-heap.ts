import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

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
 */
const PRETENURING = 'allocation-site-pretenuring';
const LIFTOFF_ONLY = 'liftoff-only';

const named = (flag: string): boolean => process.execArgv.some((arg) => arg.includes(flag));
if (!named(PRETENURING)) setFlagsFromString(`--no-${PRETENURING}`);
if (!named(LIFTOFF_ONLY)) setFlagsFromString(`--${LIFTOFF_ONLY}`);

const COLLECTOR_THREADS = ['concurrent-marking', 'concurrent-sweeping', 'concurrent-array-buffer-sweeping', 'parallel-scavenge', 'parallel-compaction', 'parallel-pointer-update'];
if (availableParallelism() === 1) for (const flag of COLLECTOR_THREADS) if (!named(flag)) setFlagsFromString(`--no-${flag}`);
