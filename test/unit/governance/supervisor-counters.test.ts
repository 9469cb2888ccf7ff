import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Cluster } from 'node:cluster';
import { serveSupervisorCounters } from '../../../src/governance/supervisor-counters.js';

/**
 * The counters WORKERS > 1 keeps in the supervisor (governance/supervisor-counters.ts), over a real
 * IPC channel: a forked worker's side, this process the supervisor (answering through the real
 * serving function, or not at all).
 */

const PROBE = fileURLToPath(new URL('../../helpers/supervisor-counters-probe.js', import.meta.url));

interface ProbeReport {
  reserve: unknown;
  added: number;
  local: number;
  /** Whether the key's one slot was had, and whether a second was. */
  slot: boolean;
  again: boolean;
}

/** Runs the probe; `supervise` sees the child (serve it, or leave it unanswered). Resolves with its report once it has exited. */
async function runProbe(supervise: (child: ChildProcess) => void): Promise<ProbeReport> {
  const child = fork(PROBE, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const report = new Promise<ProbeReport>((resolve, reject) => {
      child.on('message', (message) => {
        if (typeof message === 'object' && 'probe' in message) resolve((message as { probe: ProbeReport }).probe);
      });
      child.once('exit', (code) => reject(new Error(`the probe exited (${String(code)}) without a report`)));
    });
    supervise(child);
    const answer = await report;
    await exited;
    return answer;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** node:cluster's primary as serveSupervisorCounters sees it: 'message' with the worker and its message, 'exit' with the worker. */
function fakeCluster(): { serve: (id: number) => (child: ChildProcess) => void; exit: (id: number) => void } {
  const cluster = new EventEmitter();
  serveSupervisorCounters(cluster as unknown as Cluster);
  return {
    serve: (id) => (child) => {
      const worker = { id, isConnected: () => child.connected, send: (message: unknown, _handle: unknown, callback: () => void) => child.send(message as object, callback) };
      child.on('message', (message) => cluster.emit('message', worker, message));
    },
    exit: (id) => cluster.emit('exit', { id }),
  };
}

describe('supervisor counters', () => {
  test('the supervisor answers: a reservation is made on its counters (the ledger base crossed the channel), a window counted there, a slot held there until its worker exits', async () => {
    const supervisor = fakeCluster();
    const report = await runProbe(supervisor.serve(1));
    assert.deepEqual(report.reserve, { kind: 'reserved', used: [{ microUsd: 0, tokens: 50 }] });
    assert.equal(report.added, 3);
    assert.equal(report.local, 0, "the worker's own windows were not used");
    assert.deepEqual([report.slot, report.again], [true, false], 'one slot, held');
    // Worker 1 exited holding its slot: the supervisor frees it, and the next worker has it.
    supervisor.exit(1);
    const next = await runProbe(supervisor.serve(2));
    assert.deepEqual([next.slot, next.again], [true, false]);
  });

  test('a supervisor that does not answer: the reservation fails at its deadline (a budget unavailable), the window is counted in the worker', async () => {
    const report = await runProbe(() => undefined);
    assert.equal(report.reserve, "the supervisor's counters did not answer within 200 ms");
    assert.equal(report.added, 3);
    assert.equal(report.local, 3, "counted in the worker's own windows");
    assert.deepEqual([report.slot, report.again], [true, false], "the worker's own slot count");
  });
});
