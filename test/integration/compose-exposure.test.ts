import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { services } from '../helpers/compose.js';
import { REPO_ROOT } from '../helpers/k6.js';

test('compose publishes no Redis without a password, and Prometheus scrapes the scale-out replicas', () => {
  const yaml = execFileSync('docker-compose', ['--profile', 'scale-out', '--profile', 'load', '--profile', 'tracing', 'config'], { cwd: REPO_ROOT, encoding: 'utf8' });
  const all = services(yaml);
  const redis = all.get('redis');
  assert.ok(redis !== undefined, 'a redis service');
  if (/^\s+ports:/m.test(redis)) assert.match(redis, /--requirepass/, 'Redis is published on the host without a password');
  for (const [name, block] of all) assert.ok(!/published: 6379|6379:6379/.test(block), `${name} publishes the Redis port`);

  const prometheus = readFileSync(join(REPO_ROOT, 'monitoring', 'prometheus.yml'), 'utf8');
  for (const replica of ['gateway-1', 'gateway-2']) {
    assert.ok(all.has(replica), `compose service ${replica}`);
    assert.match(prometheus, new RegExp(`^\\s+- ${replica}$`, 'm'), `Prometheus scrapes ${replica}`);
  }
  assert.match(prometheus, /- gateway:8080/);
});
