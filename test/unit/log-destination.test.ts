import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchedWriter } from '../../src/observability/log-destination.js';

function tempFd(): { fd: number; read: () => string; close: () => void } {
  const path = join(mkdtempSync(join(tmpdir(), 'cgw-log-')), 'out.log');
  const fd = openSync(path, 'a');
  return { fd, read: () => readFileSync(path, 'utf8'), close: () => closeSync(fd) };
}

const flushed = (w: BatchedWriter): Promise<void> => new Promise((resolve, reject) => w.flush((err) => (err === undefined ? resolve() : reject(err))));

describe('BatchedWriter (the log destination)', () => {
  for (const sync of [false, true]) test(`lines wait for a batch, reach the fd in order once flushed, and nothing is written twice (${sync ? 'synchronous' : 'asynchronous'} writes)`, async () => {
    const out = tempFd();
    const w = new BatchedWriter({ fd: out.fd, minBatch: 1_000, flushMs: 60_000, maxBuffered: 1_000_000, sync });
    try {
      for (let i = 0; i < 5; i++) w.write(`line ${i}\n`);
      assert.equal(out.read(), '', 'below the batch size nothing is written yet');
      await flushed(w);
      assert.equal(out.read(), 'line 0\nline 1\nline 2\nline 3\nline 4\n');
      for (let i = 5; i < 400; i++) w.write(`line ${i}\n`); // past minBatch: written without being asked
      await flushed(w);
      assert.deepEqual(out.read().trimEnd().split('\n'), Array.from({ length: 400 }, (_, i) => `line ${i}`));
    } finally {
      w.close();
      out.close();
    }
  });

  test('bounded: past maxBuffered lines are dropped and counted, and the next batch says how many', async () => {
    const out = tempFd();
    const w = new BatchedWriter({ fd: out.fd, minBatch: 1_000_000, flushMs: 60_000, maxBuffered: 100 });
    try {
      for (let i = 0; i < 50; i++) w.write(`${String(i).padStart(8, '0')}\n`); // 9 characters each: 11 fit
      assert.equal(w.droppedLines, 39);
      await flushed(w);
      const lines = out.read().trimEnd().split('\n');
      assert.equal(lines.length, 12);
      assert.equal((JSON.parse(lines[0] as string) as { dropped: number }).dropped, 39);
      assert.equal(lines[11], '00000010');
      assert.equal(w.droppedLines, 0);
    } finally {
      w.close();
      out.close();
    }
  });

  test('flushSync writes what waits (the exit hook)', () => {
    const out = tempFd();
    const w = new BatchedWriter({ fd: out.fd, minBatch: 1_000_000, flushMs: 60_000, maxBuffered: 1_000_000 });
    w.write('last words\n');
    w.flushSync();
    assert.equal(out.read(), 'last words\n');
    w.close();
    out.close();
  });
});
