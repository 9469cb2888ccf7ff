import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/deferred.js';
import { envWithout, startDemo, type RunningDemo } from '../helpers/demo.js';
import { tryConnect } from '../helpers/ports.js';

/**
 * `npm run demo -- --failover` (dist/tools/demo/main.js --failover): two mocks behind UPSTREAMS, the
 * primary playing a script (here `down`, from the start, so the test does not race a clock), its
 * control port reachable while it is down; answers keep coming from the secondary; bringing the
 * primary back through its control port returns the traffic to it.
 */

interface Banner {
  gateway: string;
  primary: string;
  control: string;
  secondary: string;
  upstreams: { name: string; url: string; tier: number }[];
}

/** The caller's environment without anything that would pick another upstream. */
const KEYLESS = envWithout((k) => k.startsWith('ANTHROPIC_') || k === 'UPSTREAMS' || k === 'UPSTREAMS_FILE');

function failoverBanner(out: string): Banner | undefined {
  const gateway = /failover demo: gateway (http:\/\/[\d.:]+)/.exec(out)?.[1];
  const primary = /primary {3}(http:\/\/[\d.:]+) .*control (http:\/\/[\d.:]+)\)/.exec(out);
  const secondary = /secondary (http:\/\/[\d.:]+)/.exec(out)?.[1];
  const upstreams = /UPSTREAMS=(\[.*\])/.exec(out)?.[1];
  if (gateway === undefined || primary?.[1] === undefined || primary[2] === undefined || secondary === undefined || upstreams === undefined) return undefined;
  return { gateway, primary: primary[1], control: primary[2], secondary, upstreams: JSON.parse(upstreams) as Banner['upstreams'] };
}

async function startFailoverDemo(args: string[], env: Record<string, string> = {}): Promise<RunningDemo<Banner>> {
  return startDemo(args, { name: 'failover', baseEnv: KEYLESS, parseBanner: failoverBanner }, env);
}

function ask(gateway: string): Promise<Response> {
  return fetch(`${gateway}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': 'demo-key', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: `Hello ${Math.random()}` }] }),
  });
}

describe('npm run demo -- --failover', { timeout: 60_000 }, () => {
  test('two mocks behind UPSTREAMS: the primary refuses while down, its control port answers, the secondary serves', async () => {
    const demo = await startFailoverDemo(['--failover', '--primary-script=down']);
    try {
      const { banner } = demo;
      assert.deepEqual(
        banner.upstreams.map((u) => [u.name, u.url, u.tier]),
        [
          ['primary', banner.primary, 0],
          ['secondary', banner.secondary, 1],
        ],
      );
      assert.equal(await tryConnect(banner.primary), 'ECONNREFUSED', 'the primary is down: connections refused');
      const state = (await (await fetch(`${banner.control}/_mock/script`)).json()) as { down: boolean };
      assert.equal(state.down, true);
      const secondary = await fetch(`${banner.secondary}/v1/models`, { headers: { 'x-api-key': 'demo-key', 'anthropic-version': '2023-06-01' } });
      assert.equal(secondary.status, 200);
      await secondary.arrayBuffer();
    } finally {
      await demo.stop();
    }
  });

  test('answers keep coming from the secondary while the primary is down, and return to it once revived', async () => {
    const demo = await startFailoverDemo(['--failover', '--primary-script=down'], { BREAKER_RESET_TIMEOUT_MS: '500' });
    try {
      const { banner } = demo;
      for (let i = 0; i < 3; i++) {
        const res = await ask(banner.gateway);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-gateway-upstream'), 'secondary');
        await res.arrayBuffer();
      }
      const revive = await fetch(`${banner.control}/_mock/script`, { method: 'POST', body: 'healthy' });
      assert.equal(revive.status, 200);
      await eventually(
        async () => {
          const res = await ask(banner.gateway);
          await res.arrayBuffer();
          assert.equal(res.status, 200, 'no client error while the primary comes back');
          return res.headers.get('x-gateway-upstream') === 'primary';
        },
        15_000,
        'traffic to return to the primary',
      );
    } finally {
      await demo.stop();
    }
  });

  test('an invalid --primary-script stops the demo with a message naming it', async () => {
    await assert.rejects(startFailoverDemo(['--failover', '--primary-script=meltdown']), /demo exited 1: .*--primary-script: script token "meltdown"/s);
  });
});
