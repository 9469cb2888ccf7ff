import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../helpers/stack.js';
import { GATEWAY_ENV, RUN_DEADLINE_MS, SHORT, explain, findK6, runK6 } from '../helpers/k6.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';
import { startUpstreamsGateway } from '../helpers/upstreams-stack.js';

/**
 * The load-test scripts run for real on k6 (v0.48 in CI: the oldest k6 the project supports, whose
 * parser rejects syntax after ES2017), shortened through their environment variables, against a
 * real gateway in front of the project's mock on free loopback ports: each must pass (exit 0).
 * k6-without-gateway.test.ts shows each fails against the bare mock. (Two files: each stays well
 * inside the runner's per-file time limit on a busy machine.)
 */

const k6 = findK6();

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

  test('failover.js: the primary goes down under load and comes back, with zero client errors', async () => {
    // The primary's control plane on a port of its own: its API port closes while it is down.
    const [primary, secondary] = await Promise.all([createMockUpstream({ controlPort: 0 }), createMockUpstream()]);
    try {
      const upstreams = [
        { name: 'primary', url: primary.url, tier: 0 },
        { name: 'secondary', url: secondary.url, tier: 1 },
      ];
      const stack = await startUpstreamsGateway(upstreams, { LOG_LEVEL: 'warn', ...GATEWAY_ENV.failover });
      try {
        const vars = { GATEWAY_URL: stack.gateway.url, PRIMARY_CONTROL_URL: primary.controlUrl ?? '', ...SHORT.failover };
        const result = await runK6(bin, 'failover.js', vars, RUN_DEADLINE_MS);
        assert.equal(result.code, 0, explain(result));
        assert.ok((secondary.stats().byPath['POST /v1/messages'] ?? 0) > 0, 'the secondary served');
        assert.equal(primary.isDown(), false, 'the primary was left up');
      } finally {
        await stack.close();
      }
    } finally {
      await Promise.all([primary.close(), secondary.close()]);
    }
  });
});
