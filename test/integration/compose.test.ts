import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

test('docker-compose.yml is valid and brings up the whole stack', () => {
  execFileSync('docker-compose', ['config', '-q'], { cwd: ROOT, stdio: 'pipe' });
  const services = execFileSync('docker-compose', ['--profile', 'load', '--profile', 'tracing', '--profile', 'scale-out', '--profile', 'failover', '--profile', 'tiers', 'config', '--services'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((s) => s !== '')
    .sort();
  for (const s of ['gateway', 'mock-upstream', 'prometheus', 'grafana', 'redis', 'k6', 'jaeger', 'gateway-1', 'gateway-2', 'load-balancer', 'mock-primary', 'mock-secondary', 'gateway-failover', 'mock-anthropic', 'mock-bedrock', 'mock-vertex', 'gateway-tiers']) assert.ok(services.includes(s), `service ${s}`);
});

test('the mocks run from the Dockerfile\'s mock stage; the gateways from its default (production) stage', () => {
  const rendered = execFileSync('docker-compose', ['--profile', 'scale-out', '--profile', 'failover', '--profile', 'tiers', 'config'], { cwd: ROOT, encoding: 'utf8' });
  const services = (parse(rendered) as { services: Record<string, { build?: { target?: string } }> }).services;
  const built = Object.entries(services).filter(([, s]) => s.build !== undefined);
  const mocks = built.filter(([name]) => name.startsWith('mock-')).map(([name]) => name);
  assert.deepEqual(mocks.sort(), ['mock-anthropic', 'mock-bedrock', 'mock-primary', 'mock-secondary', 'mock-upstream', 'mock-vertex']);
  for (const [name, s] of built) assert.equal(s.build?.target, name.startsWith('mock-') ? 'mock' : undefined, `${name}'s build target`);
});
