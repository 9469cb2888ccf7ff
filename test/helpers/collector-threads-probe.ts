import { readdirSync, readFileSync } from 'node:fs';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

/**
 * Preloaded into a gateway process (`node --import`): on SIGUSR2 it makes V8 run old-generation
 * collections (it keeps and drops about a million small objects at a time until it has seen
 * MAJOR_COLLECTIONS of them, for at most DEADLINE_MS), then reports on stderr, as
 * `collector-threads-probe <JSON>`, how many it saw and the CPU time the process's other threads
 * (V8's marker, sweeper and helper threads among them) spent meanwhile, from /proc (Linux). Counted
 * in CPU time, not wall time: no timing race enters the answer, only where the collector's work ran.
 */
const MAJOR_COLLECTIONS = 4;
const DEADLINE_MS = 30_000;
const BATCH = 200_000;
const KEPT_AT_MOST = 1_000_000;

/** utime + stime of a thread, in ms (/proc/<pid>/task/<tid>/stat, fields 14 and 15, in clock ticks of 10 ms). */
function threadCpuMs(tid: string): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0; // the thread ended
  }
}

const otherThreadsCpuMs = (): number => readdirSync('/proc/self/task').reduce((sum, tid) => (tid === String(process.pid) ? sum : sum + threadCpuMs(tid)), 0);

process.on('SIGUSR2', () => {
  void (async () => {
    let majors = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    });
    observer.observe({ entryTypes: ['gc'] });
    const before = otherThreadsCpuMs();
    const deadline = Date.now() + DEADLINE_MS;
    let kept: { i: number; s: string; next: null }[] = [];
    while (majors < MAJOR_COLLECTIONS && Date.now() < deadline) {
      for (let i = 0; i < BATCH; i++) kept.push({ i, s: `x${i}`, next: null });
      if (kept.length >= KEPT_AT_MOST) kept = [];
      // A turn of the event loop: the observer's entries and V8's tasks run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    observer.disconnect();
    process.stderr.write(`collector-threads-probe ${JSON.stringify({ majors, otherThreadsCpuMs: otherThreadsCpuMs() - before })}\n`);
  })();
});
