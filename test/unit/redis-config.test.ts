import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';

function rejects(env: Record<string, string>, variable: string): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => err instanceof ConfigError && err.message.includes(variable),
    `a bad ${variable} stops start-up with a message naming it`,
  );
}

test('Redis configuration: cluster nodes, TLS CA file and caps are validated and named', () => {
  rejects({ REDIS_CLUSTER_NODES: 'just-a-host' }, 'REDIS_CLUSTER_NODES');
  rejects({ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES');
  rejects({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'REDIS_TLS_CA_FILE');
  rejects({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_STREAM_MAX_BYTES: '10' }, 'REDIS_STREAM_MAX_BYTES');
  rejects({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CACHE_MAX_ENTRY_BYTES: '-1' }, 'REDIS_CACHE_MAX_ENTRY_BYTES');

  const c = loadConfig({ TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, REDIS_CLUSTER_NODES: '10.0.0.1:7000, rediss://u:p@10.0.0.2:7001' });
  assert.deepEqual(c.redis?.clusterNodes, ['redis://10.0.0.1:7000', 'rediss://u:p@10.0.0.2:7001']);
  assert.equal(loadConfig({}).redis, undefined, 'no Redis unless asked');

  const dir = mkdtempSync(join(tmpdir(), 'cgw-ca-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  assert.match(loadConfig({ TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA_FILE: ca }).redis?.tlsCa ?? '', /BEGIN CERTIFICATE/);
});
