import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';
import { LOAD_TESTS, RUN_DEADLINE_MS, SHORT, explain, findK6, runK6 } from '../helpers/k6.js';

/**
 * The load-test thresholds test the gateway: pointed at the bare mock (no gateway), every script
 * that claims a gateway behaviour exits 99 with that behaviour's threshold crossed; and no
 * threshold passes on a metric that got no samples.
 */

const k6 = findK6();

describe('k6 load tests without the gateway', { skip: k6 === undefined ? 'no k6 found (K6_BIN, k6 on PATH, ../shared/tools/k6): k6 tests skipped' : false }, () => {
  const bin = k6 ?? 'k6';

  test('every script that claims a gateway behaviour fails against the bare mock', async () => {
    // Five private mocks, no gateway; the runs are independent, so they share the wall clock.
    const mocks = await Promise.all([0, 1, 2, 3, 4].map((i) => createMockUpstream(i === 4 ? { controlPort: 0 } : {})));
    try {
      const [smokeMock, coalescingMock, breakerMock, rateMock, failoverMock] = mocks as [(typeof mocks)[0], (typeof mocks)[0], (typeof mocks)[0], (typeof mocks)[0], (typeof mocks)[0]];
      const runs = await Promise.all([
        runK6(bin, 'smoke.js', { GATEWAY_URL: smokeMock.url, DURATION_S: '1', PAUSE_S: '0.2' }, RUN_DEADLINE_MS),
        runK6(bin, 'coalescing.js', { GATEWAY_URL: coalescingMock.url, MOCK_URL: coalescingMock.url, VUS: '3', BURSTS: '1', WINDOW_MS: '200', LATENCY_MS: '50' }, RUN_DEADLINE_MS),
        runK6(
          bin,
          'breaker-chaos.js',
          {
            GATEWAY_URL: breakerMock.url,
            MOCK_URL: breakerMock.url,
            ...SHORT.breaker,
            OUTAGE_START_S: '1',
            OUTAGE_S: '2',
            TRIP_GRACE_S: '0.5',
            RECOVERY_S: '1',
            BREAKER_RESET_TIMEOUT_MS: '0',
            HEAL_GRACE_S: '0',
          },
          RUN_DEADLINE_MS,
        ),
        runK6(bin, 'rate-limit.js', { GATEWAY_URL: rateMock.url, ...SHORT.rateLimit, DURATION_S: '2' }, RUN_DEADLINE_MS),
        // The primary alone: its outage reaches the client, and no answer names an upstream.
        runK6(bin, 'failover.js', { GATEWAY_URL: failoverMock.url, PRIMARY_CONTROL_URL: failoverMock.controlUrl ?? '', ...SHORT.failover, BREAKER_RESET_TIMEOUT_MS: '0' }, RUN_DEADLINE_MS),
      ]);
      const [smoke, coalescing, breaker, rateLimit, failover] = runs;
      for (const result of runs) assert.equal(result.code, 99, explain(result));
      // Each failed for the gateway behaviour it tests, not for an accident of the run.
      assert.ok(smoke.failedThresholds.includes('checks: rate==1'), explain(smoke));
      assert.match(smoke.output, /served by the gateway/);
      assert.ok(coalescing.failedThresholds.includes('coalesced_rate: rate>0.5'), explain(coalescing));
      assert.ok(breaker.failedThresholds.includes('breaker_rejections: count>0'), explain(breaker));
      assert.ok(rateLimit.failedThresholds.includes('hammer_limited: rate>0.3'), explain(rateLimit));
      assert.ok(failover.failedThresholds.includes('http_req_failed{scenario:traffic}: rate==0'), explain(failover));
      assert.ok(failover.failedThresholds.includes('served_by_secondary: count>0'), explain(failover));
    } finally {
      await Promise.all(mocks.map((m) => m.close()));
    }
  });

  test('a threshold on a metric that got no samples fails (lib/metrics.js guards every threshold)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claude-gateway-k6-fixture-'));
    try {
      const script = join(dir, 'empty-metrics.js');
      const lib = join(LOAD_TESTS, 'lib', 'metrics.js');
      writeFileSync(
        script,
        [
          `import { check, guarded, sampledRate, sampledTrend } from '${lib}';`,
          `const never = sampledRate('never_fed');`,
          `const slow = sampledTrend('never_timed', true);`,
          `export const options = { iterations: 1, thresholds: guarded({ never_fed: ['rate<0.01'], never_timed: ['p(95)<50'], 'checks{phase:none}': ['rate==1'] }) };`,
          `export default function () { if (__ENV.FEED === '1') { never.add(false); slow.add(1); check(1, { ok: () => true }, { phase: 'none' }); } }`,
          '',
        ].join('\n'),
      );
      const empty = await runK6(bin, script, {}, RUN_DEADLINE_MS);
      assert.equal(empty.code, 99, explain(empty));
      assert.deepEqual(
        [...empty.failedThresholds].sort(),
        ['check_samples{phase:none}: count>0', 'never_fed_samples: count>0', 'never_timed_samples: count>0'],
        explain(empty),
      );
      const fed = await runK6(bin, script, { FEED: '1' }, RUN_DEADLINE_MS);
      assert.equal(fed.code, 0, explain(fed));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
