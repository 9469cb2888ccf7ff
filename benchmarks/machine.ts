import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/** What the benchmark ran on, and the CPU it spent: read from /proc, so the numbers are the kernel's. */

export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  nginx: string | undefined;
  kernel: string;
}

export function describeMachine(): Machine {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: os.cpus() is the best we have
  }
  let nginx: string | undefined;
  try {
    // nginx -v prints to stderr.
    nginx = execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim().replace(/^nginx version:\s*/, '') || undefined;
  } catch {
    nginx = undefined;
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { cpuModel, cores: cpus().length, node: process.version, nginx, kernel };
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run on). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` (nginx workers under their master). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    // After the command name: state, ppid, ...
    if (fields !== undefined && Number(fields[1]) === pid) out.push(Number(entry));
  }
  return out;
}

/**
 * CPU seconds (utime + stime, every thread) used so far by `pid` and its live children. Children
 * count because nginx's workers do its work; node processes have none.
 */
export function processCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...childrenOf(pid)]) {
    const fields = statFields(p);
    // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 after the command name.
    if (fields !== undefined) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS;
}

export interface CoreTimes {
  busy: number;
  total: number;
}

/** Busy and total jiffies of each CPU since boot (/proc/stat `cpuN` lines). */
export function coreTimes(): CoreTimes[] {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l));
  return lines.map((line) => {
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: idle + iowait are not busy.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  });
}

/** Utilisation (0..1) of each CPU between two coreTimes() readings. */
export function utilisation(before: CoreTimes[], after: CoreTimes[]): number[] {
  return after.map((a, i) => {
    const b = before[i] ?? { busy: 0, total: 0 };
    const total = a.total - b.total;
    return total > 0 ? (a.busy - b.busy) / total : 0;
  });
}

/** Resident set size of a process (VmRSS now, or VmHWM = its peak), in MiB; with children for nginx. */
export function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  let kb = 0;
  for (const p of [pid, ...childrenOf(pid)]) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      kb += Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kb / 1024;
}

/**
 * Pins this process (every thread: the load generator) to `cpu`, so the proxy under test has the
 * other core to itself. Returns false when taskset is unavailable.
 */
export function pinSelf(cpu: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', cpu, String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
