import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { TenantHasher } from '../../src/http/auth.js';

test('tenant ids are HMACs of the length-prefixed parts; the memo of recent ids is bounded and changes no id', () => {
  const key = 'tenant-hash-key-0123456789abcdef0123';
  const hasher = new TenantHasher(key, 3);
  const expected = (parts: string[]): string => {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(`${p.length}:`).update(p);
    return `t:${h.digest('hex').slice(0, 32)}`;
  };
  for (let i = 0; i < 10; i++) assert.equal(hasher.id(['credential', `sk-ant-${i}`]), expected(['credential', `sk-ant-${i}`]));
  assert.equal(hasher.remembered, 3, 'bounded');
  assert.equal(hasher.id(['credential', 'sk-ant-0']), expected(['credential', 'sk-ant-0']), 'an evicted id is computed again, the same');
  assert.notEqual(hasher.id(['ab', 'c']), hasher.id(['a', 'bc']), 'part boundaries count');
});

test("a pass-through API key's tenant, remembered by the key alone, is the id of its credential; bounded the same way", () => {
  const hasher = new TenantHasher('tenant-hash-key-0123456789abcdef0123', 3);
  const fresh = new TenantHasher('tenant-hash-key-0123456789abcdef0123', 3);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 5; i++) assert.equal(hasher.ofApiKey(`sk-ant-${i}`), fresh.id(['credential', `key:sk-ant-${i}`]), `key ${i}, round ${round}`);
  }
  assert.notEqual(hasher.ofApiKey('sk-ant-0'), hasher.ofApiKey('sk-ant-1'));
});
