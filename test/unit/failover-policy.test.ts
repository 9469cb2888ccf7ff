import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, type GatewayErrorCode } from '../../src/core/errors.js';
import { answerReason, errorReason, mayMove, nextMove, type FailoverReason, type FailoverTarget } from '../../src/pipeline/call/failover-policy.js';

/** The failover policy alone (pipeline/call/failover-policy.ts): no gateway, no upstream, no budget. */

const held = (host = 'a.test'): FailoverTarget => ({ host, holdsCredentials: true });
const passThrough: FailoverTarget = { host: 'a.test', holdsCredentials: false };
const error = (code: GatewayErrorCode): GatewayError => new GatewayError(code, `test: ${code}`);

describe('failover policy: why an attempt may move on', () => {
  test('answers: 5xx and 529 always; 429, 401 and 403 only on a gateway-held credential; others never', () => {
    const cases: [number, FailoverTarget, FailoverReason | undefined][] = [
      [200, held(), undefined],
      [304, held(), undefined],
      [400, held(), undefined],
      [404, held(), undefined],
      [500, held(), 'status_5xx'],
      [503, passThrough, 'status_5xx'],
      [529, held(), 'overloaded'],
      [529, passThrough, 'overloaded'],
      [429, held(), 'rate_limited'],
      [429, passThrough, undefined],
      [401, held(), 'auth'],
      [401, passThrough, undefined],
      [403, held(), 'auth'],
      [403, passThrough, undefined],
    ];
    for (const [status, target, reason] of cases) assert.equal(answerReason(status, target), reason, `${status}, holds credentials: ${target.holdsCredentials}`);
  });

  test("errors: a gateway error by its code's failover column; anything else (an abort, a bug) never", () => {
    assert.equal(errorReason(error('CIRCUIT_OPEN')), 'circuit_open');
    assert.equal(errorReason(error('UPSTREAM_CONNECT_FAILED')), 'connect');
    assert.equal(errorReason(error('UPSTREAM_HEADERS_TIMEOUT')), 'timeout');
    assert.equal(errorReason(error('UPSTREAM_BODY_TIMEOUT')), undefined, 'after the head: no move');
    assert.equal(errorReason(error('NOT_TRANSLATABLE')), undefined, "the client's request: another upstream would refuse it too");
    assert.equal(errorReason(Object.assign(new Error('aborted'), { name: 'AbortError' })), undefined);
    assert.equal(errorReason('not an error'), undefined);
  });
});

describe('failover policy: whether a move is possible at all', () => {
  test('a replayable body, another candidate and an attempt left after this one', () => {
    assert.equal(mayMove(true, true, 2), true);
    assert.equal(mayMove(false, true, 5), false, 'a streamed body cannot be sent twice');
    assert.equal(mayMove(true, false, 5), false, 'no candidate left');
    assert.equal(mayMove(true, true, 1), false, 'this attempt is the last FAILOVER_MAX_ATTEMPTS allows');
  });
});

describe('failover policy: the next move', () => {
  test('an open breaker is passed for free, even when no real move is possible', () => {
    assert.deepEqual(nextMove('circuit_open', held(), held(), false), { kind: 'move', reason: 'circuit_open', paid: false });
    assert.deepEqual(nextMove('circuit_open', held(), undefined, false), { kind: 'move', reason: 'circuit_open', paid: false });
    assert.deepEqual(nextMove('circuit_open', held(), held(), true), { kind: 'move', reason: 'circuit_open', paid: false }, 'same host, but nothing was sent');
  });

  test('stops when the attempt did not fail in a way that moves, or when no move is possible', () => {
    assert.deepEqual(nextMove(undefined, held(), held('b.test'), true), { kind: 'stop' });
    assert.deepEqual(nextMove('status_5xx', held(), held('b.test'), false), { kind: 'stop' });
    assert.deepEqual(nextMove('status_5xx', held(), undefined, true), { kind: 'stop' });
  });

  test('a move to another host is free', () => {
    for (const reason of ['unreachable', 'timeout', 'status_5xx', 'overloaded', 'stream_error', 'connect', 'rate_limited', 'auth', 'pool_timeout'] as const) {
      assert.deepEqual(nextMove(reason, held('a.test'), held('b.test'), true), { kind: 'move', reason, paid: false }, reason);
    }
  });

  test('a move to the same host is paid from the retry budget after host strain, free after what sent nothing or is about one key', () => {
    for (const reason of ['unreachable', 'timeout', 'status_5xx', 'overloaded', 'stream_error'] as const) {
      assert.deepEqual(nextMove(reason, held(), held(), true), { kind: 'move', reason, paid: true }, reason);
    }
    for (const reason of ['connect', 'rate_limited', 'auth', 'pool_timeout'] as const) {
      assert.deepEqual(nextMove(reason, held(), held(), true), { kind: 'move', reason, paid: false }, reason);
    }
  });
});
