import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionPermits, PoolWaitTimeout } from '../../src/upstream/permits.js';

describe('ConnectionPermits', () => {
  test('hands a released permit to the oldest waiter, never past it', async () => {
    const permits = new ConnectionPermits(1);
    assert.equal(permits.tryAcquire(), true);
    const order: string[] = [];
    const first = permits.wait(60_000, new AbortController().signal).then(() => order.push('first'));
    const second = permits.wait(60_000, new AbortController().signal).then(() => order.push('second'));
    assert.equal(permits.queued, 2);
    permits.release();
    assert.equal(permits.tryAcquire(), false, 'a newcomer cannot overtake waiters');
    await first;
    permits.release();
    await second;
    assert.deepEqual(order, ['first', 'second']);
    assert.equal(permits.active, 1);
    permits.release();
    assert.equal(permits.active, 0);
  });

  test('a wait ends at its deadline with PoolWaitTimeout and leaves the queue', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const permits = new ConnectionPermits(1);
    permits.tryAcquire();
    const waiting = permits.wait(250, new AbortController().signal);
    t.mock.timers.tick(249);
    assert.equal(permits.queued, 1);
    t.mock.timers.tick(1);
    assert.equal(permits.queued, 0);
    return assert.rejects(waiting, (err: unknown) => err instanceof PoolWaitTimeout && err.waitedMs === 250);
  });

  test('an abort removes the waiter at once and rejects with the abort reason', async () => {
    const permits = new ConnectionPermits(1);
    permits.tryAcquire();
    const leaving = new AbortController();
    const waiting = permits.wait(60_000, leaving.signal);
    leaving.abort(new Error('client left'));
    assert.equal(permits.queued, 0);
    await assert.rejects(waiting, /client left/);
    permits.release();
    assert.equal(permits.active, 0, 'the permit went back to the pool, not to the departed waiter');
  });
});
