import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockUpstream } from '../../src/mock-upstream/index.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { LOAD_TESTS, findK6, runK6, type K6Result } from '../helpers/k6.js';

/**
 * The load-test scripts run for real on k6 (v0.48 in CI: the oldest k6 the project supports, whose
 * parser rejects syntax after ES2017), shortened through their environment variables, against a
 * real gateway in front of the project's mock on free loopback ports. Each must pass through the
 * gateway and fail (k6 exit 99: a threshold crossed) against the bare mock.
 */

const k6 = findK6();
const RUN_DEADLINE_MS = 40_000;

/** Short settings per script; each run takes a few seconds. */
const SHORT = {
  smoke: { DURATION_S: '1', PAUSE_S: '0.1' },
  coalescing: { VUS: '6', BURSTS: '2', WINDOW_MS: '400', LATENCY_MS: '200' },
  breaker: {
    RATE: '20',
    PRE_ALLOCATED_VUS: '4',
    MAX_VUS: '20',
    OUTAGE_START_S: '1',
    OUTAGE_S: '2.5',
    TRIP_GRACE_S: '1',
    HEAL_GRACE_S: '0.5',
    RECOVERY_S: '1.5',
    BREAKER_WINDOW_MS: '1000',
    BREAKER_RESET_TIMEOUT_MS: '1000',
  },
  rateLimit: { RATE_LIMIT_RPM: '20', DURATION_S: '3', HAMMER_RPM: '1200', SECOND_RPM: '60', PRE_ALLOCATED_VUS: '4', MAX_VUS: '20' },
} as const;

/** The gateway settings each short run assumes (the same values the script is given). */
const GATEWAY_ENV = {
  breaker: { BREAKER_WINDOW_MS: '1000', BREAKER_RESET_TIMEOUT_MS: '1000', BREAKER_VOLUME_THRESHOLD: '5', RETRY_ON_OVERLOADED: 'false' },
  rateLimit: { RATE_LIMIT_RPM: '20' },
} as const;

function explain(result: K6Result): string {
  return `k6 exit ${String(result.code)}; failed thresholds: ${result.failedThresholds.join(', ') || 'none'}\n${result.output.slice(-4000)}`;
}

async function withStack<T>(env: Record<string, string>, body: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({ env: { LOG_LEVEL: 'warn', ...env } });
  try {
    return await body(stack);
  } finally {
    await stack.close();
  }
}

describe('k6 load tests', { skip: k6 === undefined ? 'no k6 found (K6_BIN, k6 on PATH, ../shared/tools/k6): k6 tests skipped' : false }, () => {
  const bin = k6 ?? 'k6';

  test('smoke.js passes through the gateway', async () => {
    await withStack({}, async (stack) => {
      const result = await runK6(bin, 'smoke.js', { GATEWAY_URL: stack.gateway.url, ...SHORT.smoke }, RUN_DEADLINE_MS);
      assert.equal(result.code, 0, explain(result));
      assert.ok((stack.mock.stats().byPath['POST /v1/messages'] ?? 0) > 0);
    });
  });

  test('coalescing.js: bursts of identical prompts coalesce into few upstream calls', async () => {
    await withStack({}, async (stack) => {
      const vars = { GATEWAY_URL: stack.gateway.url, MOCK_URL: stack.mock.url, ...SHORT.coalescing };
      const result = await runK6(bin, 'coalescing.js', vars, RUN_DEADLINE_MS);
      assert.equal(result.code, 0, explain(result));
      const sent = Number(SHORT.coalescing.VUS) * Number(SHORT.coalescing.BURSTS);
      const upstream = stack.mock.stats().byPath['POST /v1/messages'] ?? 0;
      assert.ok(upstream >= 1 && upstream <= sent * 0.2, `upstream calls ${upstream} for ${sent} requests`);
    });
  });

  test('breaker-chaos.js: the open breaker answers fast during an outage, traffic recovers after it', async () => {
    await withStack(GATEWAY_ENV.breaker, async (stack) => {
      const vars = { GATEWAY_URL: stack.gateway.url, MOCK_URL: stack.mock.url, ...SHORT.breaker };
      const result = await runK6(bin, 'breaker-chaos.js', vars, RUN_DEADLINE_MS);
      assert.equal(result.code, 0, explain(result));
    });
  });

  test('rate-limit.js: the hammering key gets 429 with RateLimit headers, the other key is served', async () => {
    await withStack(GATEWAY_ENV.rateLimit, async (stack) => {
      const result = await runK6(bin, 'rate-limit.js', { GATEWAY_URL: stack.gateway.url, ...SHORT.rateLimit }, RUN_DEADLINE_MS);
      assert.equal(result.code, 0, explain(result));
    });
  });

  test('every script that claims a gateway behaviour fails against the bare mock', async () => {
    // Four private mocks, no gateway; the runs are independent, so they share the wall clock.
    const mocks = await Promise.all([0, 1, 2, 3].map(() => createMockUpstream()));
    try {
      const [smokeMock, coalescingMock, breakerMock, rateMock] = mocks as [(typeof mocks)[0], (typeof mocks)[0], (typeof mocks)[0], (typeof mocks)[0]];
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
      ]);
      const [smoke, coalescing, breaker, rateLimit] = runs;
      for (const result of runs) assert.equal(result.code, 99, explain(result));
      // Each failed for the gateway behaviour it tests, not for an accident of the run.
      assert.ok(smoke.failedThresholds.includes('checks: rate==1'), explain(smoke));
      assert.match(smoke.output, /served by the gateway/);
      assert.ok(coalescing.failedThresholds.includes('coalesced_rate: rate>0.5'), explain(coalescing));
      assert.ok(breaker.failedThresholds.includes('breaker_rejections: count>0'), explain(breaker));
      assert.ok(rateLimit.failedThresholds.includes('hammer_limited: rate>0.3'), explain(rateLimit));
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
