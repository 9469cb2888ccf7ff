import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../../src/observability/logger.js';
import { BudgetMetrics } from '../../../src/governance/budget-metrics.js';
import { LedgerWriter, type LedgerSink } from '../../../src/governance/ledger-writer.js';
import type { LedgerRow } from '../../../src/governance/model.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { deferred, until } from '../../helpers/deferred.js';

function row(n: number): LedgerRow {
  return {
    at: n, requestId: `r${n}`, keyId: 'k', teamId: 't', userId: undefined, mode: 'default', model: 'claude-sonnet-4-5', upstream: 'anthropic', status: 200, source: 'upstream',
    inputTokens: 1, outputTokens: 1, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, costMicroUsd: 18, savedMicroUsd: 0, latencyMs: 1, claudeCodeSession: undefined,
  };
}

class Sink implements LedgerSink {
  rows: LedgerRow[] = [];
  down = false;
  attempts = 0;
  insertLedger(rows: readonly LedgerRow[]): Promise<void> {
    this.attempts++;
    if (this.down) return Promise.reject(new Error('connection refused'));
    this.rows.push(...rows);
    return Promise.resolve();
  }
}

const fast = { flushIntervalMs: 1, retryBaseMs: 1, retryMaxMs: 5 };

test('rows are written in batches off the caller, in order', async () => {
  const sink = new Sink();
  const w = new LedgerWriter(sink, undefined, createLogger('info', new LogCapture()), { ...fast, batchRows: 3 });
  for (let i = 0; i < 10; i++) w.push(row(i));
  assert.equal(sink.rows.length, 0, 'push never writes in the caller');
  await until(() => sink.rows.length === 10, 5_000, 'all rows written');
  assert.deepEqual(sink.rows.map((r) => r.at), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(sink.attempts >= 4, 'batches of at most 3');
  assert.equal(w.depth, 0);
});

test('sink down: rows are kept and retried, and written once it is back; one log line per outage', async () => {
  const sink = new Sink();
  sink.down = true;
  const logs = new LogCapture();
  const w = new LedgerWriter(sink, undefined, createLogger('info', logs), fast);
  for (let i = 0; i < 50; i++) w.push(row(i));
  await until(() => sink.attempts >= 5, 5_000, 'several failed attempts');
  assert.equal(w.depth, 50);
  sink.down = false;
  await until(() => sink.rows.length === 50, 5_000, 'the kept rows written');
  assert.deepEqual(sink.rows.map((r) => r.at), Array.from({ length: 50 }, (_, i) => i));
  assert.equal(w.dropped, 0);
  const lines = logs.records().map((r) => String(r.msg));
  assert.equal(lines.filter((m) => m.startsWith('ledger writes failing')).length, 1);
  assert.equal(lines.filter((m) => m.startsWith('ledger writes work again')).length, 1);
});

test('bound reached while the sink is down: the oldest rows are dropped and counted, the newest kept', async () => {
  const sink = new Sink();
  sink.down = true;
  const registry = new Registry();
  const metrics = new BudgetMetrics(registry);
  const w = new LedgerWriter(sink, metrics, createLogger('info', new LogCapture()), { ...fast, maxRows: 100 });
  for (let i = 0; i < 250; i++) w.push(row(i));
  assert.ok(w.depth <= 100, `held ${w.depth} rows, bound 100`);
  assert.equal(w.dropped, 250 - w.depth);
  sink.down = false;
  await until(() => w.depth === 0, 5_000, 'the queue drained');
  assert.equal(sink.rows.length + w.dropped, 250);
  assert.equal(sink.rows.at(-1)?.at, 249, 'the newest row survived');
  assert.ok((sink.rows[0]?.at ?? 0) >= 150 - 1, 'what survived is the newest');
  assert.match(await registry.metrics(), new RegExp(`claude_gateway_ledger_dropped_total ${w.dropped}`));
});

test('the byte bound holds as well', () => {
  const sink = new Sink();
  sink.down = true;
  const w = new LedgerWriter(sink, undefined, createLogger('info', new LogCapture()), { ...fast, maxBytes: 10 * 300 });
  for (let i = 0; i < 100; i++) w.push(row(i));
  assert.ok(w.depth <= 10, `held ${w.depth}`);
  assert.equal(w.dropped + w.depth, 100);
});

test('close writes what is held, within its deadline; a stuck sink gets the deadline and the rest is counted as dropped', async () => {
  const sink = new Sink();
  const w = new LedgerWriter(sink, undefined, createLogger('info', new LogCapture()), { flushIntervalMs: 60_000 });
  for (let i = 0; i < 7; i++) w.push(row(i));
  await w.close(5_000);
  assert.equal(sink.rows.length, 7);

  const stuck = deferred();
  const hung: LedgerSink = { insertLedger: () => stuck.promise };
  const w2 = new LedgerWriter(hung, undefined, createLogger('info', new LogCapture()), { flushIntervalMs: 60_000 });
  for (let i = 0; i < 3; i++) w2.push(row(i));
  await w2.close(50);
  assert.equal(w2.dropped, 3);
  w2.push(row(99));
  assert.equal(w2.dropped, 4, 'a row after close is dropped, counted');
  stuck.resolve();
});
