import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
// First import of this file (node --test runs each file in its own process): undici's index is not loaded yet.
import { Pool, buildConnector, errors, headerNameToString, parseHeaders } from '../../src/upstream/undici-parts.js';

const commonJsCache = createRequire(import.meta.url).cache;
const undiciIndexLoaded = (): boolean => Object.keys(commonJsCache).some((path) => /\/node_modules\/undici\/index\.js$/.test(path));

describe("undici's parts without undici's index", () => {
  test('a Pool made from the parts sends a request while the index is still not loaded', async () => {
    const server = createServer((_req, res) => res.end('answered'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    try {
      const answer = await pool.request({ path: '/', method: 'GET' });
      assert.equal(answer.statusCode, 200);
      assert.equal(await answer.body.text(), 'answered');
      assert.equal(undiciIndexLoaded(), false, "the parts loaded undici's index");
    } finally {
      await pool.close();
      server.close();
    }
  });

  test("every part is the very object undici's index exports (an undici upgrade that moves a file fails here)", async () => {
    const undici = await import('undici');
    assert.equal(undiciIndexLoaded(), true);
    assert.equal(Pool, undici.Pool);
    assert.equal(buildConnector, undici.buildConnector);
    assert.equal(errors, undici.errors);
    assert.equal(errors.RequestAbortedError, undici.errors.RequestAbortedError);
  });

  test("undici's raw header readers (internal, not in its index) are still there and read as the gateway expects", () => {
    assert.equal(headerNameToString(Buffer.from('Content-Type')), 'content-type');
    assert.equal(headerNameToString(Buffer.from('X-Not-Well-Known')), 'x-not-well-known');
    assert.equal(headerNameToString('Request-Id'), 'request-id');
    assert.deepEqual(parseHeaders([Buffer.from('A'), Buffer.from('1'), Buffer.from('a'), Buffer.from('2')]), { a: ['1', '2'] });
  });
});
