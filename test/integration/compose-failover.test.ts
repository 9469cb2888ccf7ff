import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { parseScript } from '../../tools/mock-upstream/index.js';
import { envOf, services } from '../helpers/compose.js';
import { REPO_ROOT } from '../helpers/k6.js';

/**
 * The compose profile `failover` (there is no Docker engine here: the rendered configuration is
 * checked): two mocks with their own failure scripts, and a gateway whose UPSTREAMS names exactly
 * those services on the ports they listen on, accepted by the gateway's own configuration loader;
 * the primary's health check and manual control use its control port (its API port is closed
 * while it is down); Prometheus scrapes the failover gateway.
 */

test('compose profile failover: two scripted mocks, a gateway whose UPSTREAMS names them, scraped by Prometheus', () => {
  const yaml = execFileSync('docker-compose', ['--profile', 'failover', 'config'], { cwd: REPO_ROOT, encoding: 'utf8' });
  const all = services(yaml);
  const primary = all.get('mock-primary');
  const secondary = all.get('mock-secondary');
  const gateway = all.get('gateway-failover');
  assert.ok(primary !== undefined && secondary !== undefined && gateway !== undefined, 'services mock-primary, mock-secondary, gateway-failover');

  // The primary's script takes it down for a while; its control port serves health checks and manual control.
  const script = parseScript(envOf(primary, 'MOCK_SCRIPT') ?? '');
  if (typeof script === 'string') assert.fail(`MOCK_SCRIPT: ${script}`);
  assert.ok(script.repeat && script.steps.some((s) => s.do === 'down'), 'the primary goes down and comes back, over and over');
  const controlPort = envOf(primary, 'MOCK_CONTROL_PORT');
  assert.match(controlPort ?? '', /^\d+$/);
  assert.match(primary, new RegExp(`127\\.0\\.0\\.1:${controlPort ?? ''}/_mock/stats`), 'the health check asks the control port');
  assert.equal(envOf(secondary, 'MOCK_SCRIPT'), undefined, 'the secondary is healthy');

  // UPSTREAMS: exactly the two services, on the ports they listen on, primary first.
  const upstreams = JSON.parse(envOf(gateway, 'UPSTREAMS') ?? 'null') as { name: string; url: string; tier?: number; api_key_env?: string }[];
  assert.deepEqual(
    upstreams.map((u) => [u.name, u.url]),
    [
      ['primary', `http://mock-primary:${envOf(primary, 'MOCK_PORT') ?? ''}`],
      ['secondary', `http://mock-secondary:${envOf(secondary, 'MOCK_PORT') ?? ''}`],
    ],
  );
  assert.ok((upstreams[0]?.tier ?? 0) < (upstreams[1]?.tier ?? 0), 'the secondary is a lower tier');
  assert.ok(
    upstreams.every((u) => u.api_key_env === undefined),
    'pass-through: clients bring their keys',
  );
  assert.match(gateway, /mock-primary:\n\s+condition: service_healthy/);
  assert.match(gateway, /mock-secondary:\n\s+condition: service_healthy/);
  // The gateway's own loader accepts the stack's configuration.
  loadConfig({ PORT: '8080', UPSTREAMS: envOf(gateway, 'UPSTREAMS') ?? '', BREAKER_RESET_TIMEOUT_MS: envOf(gateway, 'BREAKER_RESET_TIMEOUT_MS') ?? '' });

  const prometheus = readFileSync(join(REPO_ROOT, 'monitoring', 'prometheus.yml'), 'utf8');
  assert.match(prometheus, /^\s+- gateway-failover$/m, 'Prometheus scrapes gateway-failover');
});
