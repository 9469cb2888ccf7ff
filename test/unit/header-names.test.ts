import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headerName } from '../../src/upstream/header-names.js';
import { headerNameToString } from '../../src/upstream/undici-parts.js';

describe('interned header names (upstream/header-names.ts)', () => {
  test("every name reads as undici reads it: case, repeats, latin1 bytes, long names, and past the table's bound", () => {
    const names = ['Content-Type', 'content-type', 'ANTHROPIC-RATELIMIT-TOKENS-LIMIT', 'anthropic-ratelimit-tokens-limit', 'X-\u00c0-Latin', 'x-\u00e0-latin', `x-${'Long'.repeat(40)}`, '', 'a'];
    for (let round = 0; round < 3; round++) {
      for (const name of names) {
        const bytes = Buffer.from(name, 'latin1');
        assert.equal(headerName(bytes), headerNameToString(bytes), `${name} (round ${round})`);
      }
    }
    for (let i = 0; i < 1500; i++) {
      const bytes = Buffer.from(`X-Name-${i}`, 'latin1');
      assert.equal(headerName(bytes), `x-name-${i}`);
      assert.equal(headerName(Buffer.from(`x-name-${i}`)), `x-name-${i}`);
    }
    assert.equal(headerName('Request-Id'), 'request-id');
  });
});
