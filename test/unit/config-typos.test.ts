import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configVariables } from '../../src/config.js';
import { editDistance, nearMissVariables } from '../../src/config-typos.js';

describe('variables that are almost the gateway\'s', () => {
  test('a misspelt variable is named with the known one it most likely meant', () => {
    const env = { UPSTREAM_ULR: 'http://127.0.0.1:1', PROT: '8080', LOGLEVEL: 'debug', upstream_url: 'x', REDIS_HOST: 'cache:6379', WORKER: '2' };
    assert.deepEqual(nearMissVariables(env), [
      { name: 'UPSTREAM_ULR', closest: 'UPSTREAM_URL' },
      { name: 'PROT', closest: 'PORT' },
      { name: 'LOGLEVEL', closest: 'LOG_LEVEL' },
      { name: 'upstream_url', closest: 'UPSTREAM_URL' },
      { name: 'REDIS_HOST', closest: 'REDIS_URL' },
      { name: 'WORKER', closest: 'WORKERS' },
    ]);
  });

  test('known variables, unrelated ones and UPSTREAMS\' api_key_env targets are not near misses', () => {
    const known = Object.fromEntries(configVariables().map((v) => [v.name, 'x']));
    const unrelated = { PATH: '/bin', HOME: '/root', PWD: '/', TERM: 'xterm', LANG: 'C', USER: 'u', SHELL: '/bin/sh', NODE_ENV: 'production', NODE_OPTIONS: '', ANTHROPIC_BASE_URL: 'x', ANTHROPIC_AUTH_TOKEN: 'x', AWS_REGION: 'x', OTEL_SERVICE_NAME: 'x', HOSTNAME: 'h' };
    assert.deepEqual(nearMissVariables({ ...known, ...unrelated }), []);
    assert.deepEqual(nearMissVariables({ UPSTREAM_KEY_PRIMARY: 'sk' }, ['UPSTREAM_KEY_PRIMARY']), []);
  });

  test('edit distance counts a swap of neighbours as one edit', () => {
    assert.equal(editDistance('UPSTREAM_ULR', 'UPSTREAM_URL'), 1);
    assert.equal(editDistance('HOME', 'HOST'), 2);
    assert.equal(editDistance('', 'PORT'), 4);
  });
});
