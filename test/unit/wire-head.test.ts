import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headFromWire, wireHead } from '../../src/coordination/wire-head.js';
import type { FlightHead } from '../../src/pipeline/coalesce/flight.js';

/**
 * Instances of different versions share one Redis (a rolling upgrade): the head entry of a relayed
 * flight and a shared cache entry keep the form every instance wrote before heads were flat.
 */
describe('an answer head between instances', () => {
  /** Exactly what an instance wrote when heads were [name, value] pairs with x-gateway-upstream last. */
  const PAIRS_JSON = '{"status":200,"headers":[["content-type","application/json"],["set-cookie",["a=1","b=2"]],["request-id","req_1"],["x-gateway-upstream","primary"]],"eventStream":false}';

  test('a flat head with its upstream is written in the pairs form, x-gateway-upstream last', () => {
    const head: FlightHead = { status: 200, headers: ['content-type', 'application/json', 'set-cookie', ['a=1', 'b=2'], 'request-id', 'req_1'], eventStream: false, upstream: 'primary' };
    assert.equal(JSON.stringify(wireHead(head)), PAIRS_JSON);
  });

  test('a head in the pairs form reads as the flat list, x-gateway-upstream where it was written (the same bytes to a client)', () => {
    const head = headFromWire(JSON.parse(PAIRS_JSON) as Parameters<typeof headFromWire>[0]);
    assert.deepEqual(head, { status: 200, headers: ['content-type', 'application/json', 'set-cookie', ['a=1', 'b=2'], 'request-id', 'req_1', 'x-gateway-upstream', 'primary'], eventStream: false });
  });

  test('a flat list reads as itself; no headers reads as none', () => {
    const flat = { status: 529, headers: ['retry-after', '1'], eventStream: false };
    assert.deepEqual(headFromWire(flat), flat);
    assert.deepEqual(headFromWire({ status: 204, headers: [], eventStream: true }), { status: 204, headers: [], eventStream: true });
  });
});
