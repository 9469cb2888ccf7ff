import { WebSocket } from 'undici';

/**
 * Bytes allocated per request by a process under benchmark, from V8's sampling heap profiler, read
 * over the inspector protocol from outside the process (so a base build, this build and the bare
 * proxy are measured alike, with no code of theirs involved).
 *
 * Why this method: the sampling profiler with `includeObjectsCollectedByMinorGC/MajorGC` keeps a
 * sample of every allocation, including the short-lived ones a scavenge frees (most of a request's),
 * and scales each sample by the inverse of its probability of being sampled, so the sum is an
 * unbiased estimate of the bytes allocated, with the site that allocated them. Its cost (a sample
 * every `SAMPLING_INTERVAL` bytes on average) only exists while sampling, which happens in a window
 * of its own after every CPU window. v8.getHeapStatistics() has no cumulative allocated-bytes count
 * in Node 20 (heap deltas lose everything a collection freed in between), and `--heap-prof` samples
 * the whole life of the process and only writes at exit.
 *
 * The process is started with `--inspect-port=127.0.0.1:<port>` (inactive: no listener, no cost)
 * and its inspector is opened with SIGUSR1 when the allocation window starts.
 */

/** Mean bytes between samples: small enough for thousands of samples per window, which is all it costs. */
const SAMPLING_INTERVAL = 8192;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** One allocation site: a function (name, file, line) and the bytes it allocated itself. */
export interface AllocationSite {
  site: string;
  bytes: number;
}

export interface AllocationProfile {
  totalBytes: number;
  /** Every site, most bytes first. */
  sites: AllocationSite[];
}

/** A connection to one process's inspector: requests and their answers, in order, with a deadline each. */
class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (waiting === undefined || message.id === undefined) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result);
    });
    ws.addEventListener('close', () => {
      for (const { reject } of this.pending.values()) reject(new Error('inspector closed'));
      this.pending.clear();
    });
  }

  /** SIGUSR1 opens the inspector on the port of `--inspect-port`; waits (bounded) until it answers. */
  static async open(pid: number, port: number, timeoutMs = 10_000): Promise<Inspector> {
    process.kill(pid, 'SIGUSR1');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
        const url = targets[0]?.webSocketDebuggerUrl;
        if (url !== undefined) {
          const ws = new WebSocket(url);
          await new Promise<void>((resolve, reject) => {
            ws.addEventListener('open', () => resolve());
            ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)));
          });
          return new Inspector(ws);
        }
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`the inspector of pid ${pid} did not open on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  send<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Sums a profile's self sizes by site (function, file relative to node_modules or dist, line). */
function summarize(head: ProfileNode): AllocationProfile {
  const bySite = new Map<string, number>();
  let totalBytes = 0;
  const stack: ProfileNode[] = [head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    stack.push(...node.children);
    if (node.selfSize === 0) continue;
    totalBytes += node.selfSize;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, '');
    const site = `${functionName === '' ? '(anonymous)' : functionName} ${file === '' ? '(native)' : `${file}:${lineNumber + 1}`}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  }
  const sites = [...bySite].map(([site, bytes]) => ({ site, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { totalBytes, sites };
}

/** Samples every allocation of process `pid` while `during` runs; the inspector stays open for the next window. */
export class AllocationSampler {
  private inspector: Inspector | undefined;

  constructor(
    private readonly pid: number,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    this.inspector ??= await Inspector.open(this.pid, this.port);
    await this.inspector.send('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  async stop(): Promise<AllocationProfile> {
    if (this.inspector === undefined) throw new Error('not sampling');
    const { profile } = await this.inspector.send<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
    return summarize(profile.head);
  }

  /** A full collection in the process (the inspector opens for it, which itself holds a little memory). */
  async collectGarbage(): Promise<void> {
    this.inspector ??= await Inspector.open(this.pid, this.port);
    await this.inspector.send('HeapProfiler.collectGarbage');
  }

  close(): void {
    this.inspector?.close();
    this.inspector = undefined;
  }
}
