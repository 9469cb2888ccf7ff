import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_TYPE_BY_STATUS, ERRORS, GatewayError, isErrorCode, type GatewayErrorCode } from '../../src/core/errors.js';
import { toGatewayError } from '../../src/coordination/flight-reader.js';
import { REMOTE_FALLBACK_CODE } from '../../src/coordination/flight-stream.js';
import { callEnd, isUpstreamFailure } from '../../src/pipeline/call/admit.js';
import { newFacts } from '../../src/pipeline/call/facts.js';
import { REPO_ROOT } from '../helpers/k6.js';

const CODES = Object.keys(ERRORS) as GatewayErrorCode[];
const SERVER_TYPES = new Set(['api_error', 'overloaded_error', 'timeout_error']);

test("every code's type is its status's, in the status's family", () => {
  for (const code of CODES) {
    const { status, type } = ERRORS[code];
    assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status} is an error status`);
    assert.equal(ERROR_TYPE_BY_STATUS[status], type, `${code}: ${status} has its own row in the status -> type table, and the code's type is that row`);
    assert.equal(SERVER_TYPES.has(type), status >= 500, `${code}: a ${status} is ${status >= 500 ? 'a server' : 'a client'} error type, not ${type}`);
    const err = new GatewayError(code, 'm');
    assert.deepEqual([err.status, err.type, err.toBody().error.type], [status, type, type], `${code}: the error takes status and type from its row`);
  }
});

test('the codes that count against a breaker are exactly the upstream failures (502/504), and none a client causes', () => {
  for (const code of CODES) {
    const rule = ERRORS[code];
    // A gateway answers 502/504 when its upstream failed; its own refusals are 4xx, its overloads 529, its bugs 500.
    assert.equal(rule.breaker, rule.status === 502 || rule.status === 504, `${code} (${rule.status}): breaker = the upstream failed`);
    if (rule.breaker) assert.match(code, /^UPSTREAM_/, `${code}: a breaker-counting code names the upstream`);
    // admit reads the same column: the call ends `upstream_failed` exactly for these.
    assert.equal(isUpstreamFailure(new GatewayError(code, 'm')), rule.breaker, `${code}: admit agrees with the table`);
    const outcome = { head: undefined, error: new GatewayError(code, 'm'), complete: false, abandoned: false, subscribers: 1 };
    assert.equal(callEnd(outcome, newFacts()), rule.breaker ? 'upstream_failed' : 'refused_by_gateway', code);
  }
});

test("a retryable code fails over too; a request's own fault (4xx) neither moves nor retries", () => {
  for (const code of CODES) {
    const rule = ERRORS[code];
    if (rule.retryable) assert.notEqual(rule.failover, undefined, `${code}: a retry is a move on the same upstream; its reason names the retry`);
    if (rule.status < 500) assert.deepEqual([rule.failover, rule.retryable], [undefined, false], `${code}: the request's own fault goes nowhere else`);
    assert.ok(rule.meaning.length > 0 && !rule.meaning.includes('\n'), `${code}: a one-line meaning`);
  }
});

test('the Redis type guard refuses unknown codes, and a published error never picks its own status', () => {
  for (const code of CODES) assert.ok(isErrorCode(code), code);
  for (const junk of ['NOPE', '', 'internal', 'INTERNAL ', '__proto__', 'toString', 'constructor', 'hasOwnProperty', 42, null, undefined, {}, ['INTERNAL']]) {
    assert.equal(isErrorCode(junk), false, JSON.stringify(junk));
  }
  const unknown = toGatewayError({ code: 'FROM_A_NEWER_VERSION', status: 418, message: 'Shared upstream call failed' });
  assert.deepEqual([unknown.code, unknown.status], [REMOTE_FALLBACK_CODE, ERRORS[REMOTE_FALLBACK_CODE].status]);
  const proto = toGatewayError({ code: '__proto__', status: 200, message: 'x' });
  assert.equal(proto.code, REMOTE_FALLBACK_CODE);
  const known = toGatewayError({ code: 'CIRCUIT_OPEN', status: 200, message: 'open' });
  assert.deepEqual([known.code, known.status, known.type, known.message], ['CIRCUIT_OPEN', 529, 'overloaded_error', 'open']);
});

test("README's error table has a row for every code's status and type", () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| status | type | when |'));
  const rows = new Set<string>();
  for (const line of table.split('\n').slice(2)) {
    const m = /^\| (\d{3}) \| `([a-z_]+)` \|/.exec(line);
    if (m === null) break;
    rows.add(`${m[1]} ${m[2]}`);
  }
  assert.ok(rows.size > 5, 'the table was found');
  for (const code of CODES) assert.ok(rows.has(`${ERRORS[code].status} ${ERRORS[code].type}`), `${code}: README (Endpoints) lists ${ERRORS[code].status} ${ERRORS[code].type}`);
});
