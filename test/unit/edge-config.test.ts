import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { problemsOf } from '../helpers/config-problems.js';

const KEY = 'k'.repeat(32);

describe('edge configuration (TENANT_HASH_KEY, ALLOWED_HOSTS, MODELS)', () => {
  test('REDIS_URL without TENANT_HASH_KEY stops start-up naming the variable; with it, start-up proceeds', () => {
    const problems = problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379' });
    assert.ok(problems.some((p) => p.includes('TENANT_HASH_KEY')), problems.join('\n'));
    assert.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', TENANT_HASH_KEY: KEY }).tenantHashKey, KEY);
  });

  test('a short TENANT_HASH_KEY is refused without echoing it', () => {
    const problems = problemsOf({ TENANT_HASH_KEY: 'short-secret' });
    assert.ok(problems.some((p) => p.startsWith('TENANT_HASH_KEY')), problems.join('\n'));
    assert.ok(!problems.join('\n').includes('short-secret'));
  });

  test('ALLOWED_HOSTS: host or host:port values, lower-cased; anything else names the variable', () => {
    assert.deepEqual([...(loadConfig({ ALLOWED_HOSTS: 'GW.example:8443, gateway.internal,[::1]:8080' }).allowedHosts ?? [])], ['gw.example:8443', 'gateway.internal', '[::1]:8080']);
    for (const bad of ['http://gw.example', 'gw.example/path', 'a b', ',']) {
      assert.ok(problemsOf({ ALLOWED_HOSTS: bad }).some((p) => p.startsWith('ALLOWED_HOSTS')), bad);
    }
    assert.equal(loadConfig({}).allowedHosts, undefined);
  });

  test('MODELS is a list of model ids', () => {
    assert.deepEqual([...(loadConfig({ MODELS: 'claude-opus-5,claude-sonnet-5' }).models ?? [])], ['claude-opus-5', 'claude-sonnet-5']);
    assert.ok(problemsOf({ MODELS: 'bad model!' }).some((p) => p.startsWith('MODELS')));
  });
});
