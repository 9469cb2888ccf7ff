import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/observability/logger.js';
import { RequestLog, isoTime } from '../../src/observability/request-log.js';
import { LogCapture } from '../helpers/log-capture.js';

/** The record pino writes for a request (its keys in the line's order). */
interface RequestLine {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  completed: boolean;
  mode: string;
  tenant: string | undefined;
  coalesce: string | undefined;
  upstreamRequestId: string | undefined;
  code: string | undefined;
  trace_id: string | undefined;
}

const LINES: RequestLine[] = [
  { method: 'POST', path: '/v1/messages', status: 200, durationMs: 1.27, completed: true, mode: 'default', tenant: 't:5f31df89', coalesce: 'leader', upstreamRequestId: 'req_01', code: undefined, trace_id: undefined },
  { method: 'GET', path: '/healthz', status: 200, durationMs: 0.05, completed: true, mode: 'default', tenant: undefined, coalesce: undefined, upstreamRequestId: undefined, code: undefined, trace_id: undefined },
  // Everything a hostile client or upstream controls, escaped: quotes, backslashes, control characters, a lone surrogate, non-ASCII.
  { method: 'PO"ST', path: '/v1/"x\\y\n\u0001\u001f\ud800é漢', status: 499, durationMs: 12345.67, completed: false, mode: 'batch', tenant: 't:00', coalesce: 'follower', upstreamRequestId: 'req_"\\\u2028', code: 'STALLED_CLIENT_DROPPED', trace_id: '0af7651916cd43dd8448eb211c80319c' },
];

describe('the request log line', () => {
  test('is what pino writes for logger.info(line, "request"): the same keys in the same order, the same values', () => {
    const ours = new LogCapture();
    const theirs = new LogCapture();
    const log = new RequestLog(createLogger('debug', ours));
    const pino = createLogger('debug', theirs);
    for (const line of LINES) {
      const facts = { mode: line.mode, tenant: line.tenant, role: line.coalesce, upstreamRequestId: line.upstreamRequestId, errorCode: line.code };
      log.write('info', line.method, line.path, line.status, line.durationMs, line.completed, facts, line.trace_id);
      pino.info(line, 'request');
      log.write('debug', line.method, line.path, line.status, line.durationMs, line.completed, facts, line.trace_id);
      pino.debug(line, 'request');
    }
    assert.equal(ours.lines.length, LINES.length * 2);
    const strip = (text: string): [string[], Record<string, unknown>] => {
      const record = JSON.parse(text) as Record<string, unknown>;
      assert.match(String(record.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      delete record.time;
      return [Object.keys(record), record];
    };
    for (const [i, line] of ours.lines.entries()) assert.deepEqual(strip(line), strip(theirs.lines[i] ?? '{}'), line);
  });

  test('past its bounded caches of rendered pieces (method and path, mode), each line is still the record pino writes', () => {
    const ours = new LogCapture();
    const theirs = new LogCapture();
    const log = new RequestLog(createLogger('info', ours));
    const pino = createLogger('info', theirs);
    // More distinct paths and modes than the log keeps rendered (client-chosen: never an unbounded cache), each twice.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 600; i++) {
        const line = { method: i % 2 === 0 ? 'GET' : 'POST', path: `/v1/models/m-${i}`, status: 200, durationMs: i / 100, completed: i % 3 !== 0, mode: `mode-${i % 150}` };
        log.write('info', line.method, line.path, line.status, line.durationMs, line.completed, { mode: line.mode, tenant: undefined, role: undefined, upstreamRequestId: undefined, errorCode: undefined }, undefined);
        pino.info(line, 'request');
      }
    }
    assert.equal(ours.lines.length, 1_200);
    const strip = (text: string): string => {
      const record = JSON.parse(text) as Record<string, unknown>;
      assert.match(String(record.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      delete record.time;
      return JSON.stringify(record);
    };
    for (const [i, line] of ours.lines.entries()) assert.equal(strip(line), strip(theirs.lines[i] ?? '{}'));
  });

  test('follows the logger level', () => {
    const log = new RequestLog(createLogger('info', new LogCapture()));
    assert.equal(log.enabled('info'), true);
    assert.equal(log.enabled('debug'), false);
  });

  test('isoTime is Date#toISOString across seconds, milliseconds and a day boundary', () => {
    for (const t of [0, 999, 1000, 1001, 59_999, 1_795_000_000_000, 1_795_000_000_009, 1_795_000_000_099, 1_795_000_000_100, 1_795_046_399_999, 1_795_046_400_000, Date.now()]) {
      assert.equal(isoTime(t), new Date(t).toISOString(), String(t));
    }
  });
});
