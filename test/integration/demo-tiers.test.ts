import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { eventually } from '../helpers/deferred.js';
import { envWithout, startDemo, type RunningDemo } from '../helpers/demo.js';

/**
 * `npm run demo -- --tiers` (dist/tools/demo/main.js --tiers): an Anthropic mock (tier 0, here scripted
 * `down` from the start so the test does not race a clock), a Bedrock mock (tier 1, SigV4 with
 * made-up keys) and a Vertex mock (tier 2, ADC external_account through the mock's STS) behind
 * UPSTREAMS, all real processes. The SDK gets answers from Bedrock while Anthropic is down, from
 * Vertex once Bedrock goes down too, and from Anthropic again once it is revived; no real
 * credential of the caller's environment ever reaches a mock.
 */

interface Tier {
  url: string;
  control: string;
}

interface Banner {
  gateway: string;
  key: string;
  anthropic: Tier;
  bedrock: Tier;
  vertex: Tier;
  upstreams: { name: string; kind: string; url: string; tier: number }[];
}

/** The caller's environment without anything that would pick another upstream or real credentials. */
const KEYLESS = envWithout((k) => k.startsWith('ANTHROPIC_') || k.startsWith('AWS_') || k.startsWith('GOOGLE_') || ['UPSTREAMS', 'UPSTREAMS_FILE', 'GATEWAY_API_KEYS'].includes(k));

function tiersBanner(out: string): Banner | undefined {
  const tier = (name: string): Tier | undefined => {
    const m = new RegExp(`${name} +(http://[\\d.:]+) .*control (http://[\\d.:]+)\\)`).exec(out);
    return m?.[1] === undefined || m[2] === undefined ? undefined : { url: m[1], control: m[2] };
  };
  const gateway = /three-tier demo: gateway (http:\/\/[\d.:]+)/.exec(out)?.[1];
  const key = /gateway key ([\w-]+)\)/.exec(out)?.[1];
  const [anthropic, bedrock, vertex] = [tier('anthropic'), tier('bedrock'), tier('vertex')];
  const upstreams = /UPSTREAMS=(\[.*\])/.exec(out)?.[1];
  if (gateway === undefined || key === undefined || anthropic === undefined || bedrock === undefined || vertex === undefined || upstreams === undefined) return undefined;
  return { gateway, key, anthropic, bedrock, vertex, upstreams: JSON.parse(upstreams) as Banner['upstreams'] };
}

async function startTiersDemo(args: string[], env: Record<string, string> = {}): Promise<RunningDemo<Banner>> {
  return startDemo(args, { name: 'tiers', baseEnv: KEYLESS, parseBanner: tiersBanner }, env);
}

async function script(control: string, body: string): Promise<void> {
  const res = await fetch(`${control}/_mock/script`, { method: 'POST', body });
  assert.equal(res.status, 200, `${control}/_mock/script ${body}`);
  await res.arrayBuffer();
}

/** One plain and one streamed call through the SDK; returns the tier that served each. */
async function served(sdk: Anthropic): Promise<string[]> {
  const params = { model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user' as const, content: `Hello ${Math.random()}` }] };
  const { data, response } = await sdk.messages.create(params).withResponse();
  assert.equal(data.type, 'message');
  const stream = sdk.messages.stream({ ...params, messages: [{ role: 'user', content: `Stream ${Math.random()}` }] });
  const final = await stream.finalMessage();
  assert.equal(final.type, 'message');
  const streamed = (await stream.withResponse()).response.headers.get('x-gateway-upstream');
  return [response.headers.get('x-gateway-upstream') ?? '', streamed ?? ''];
}

describe('npm run demo -- --tiers', { timeout: 60_000 }, () => {
  test('answers move from Anthropic to Bedrock to Vertex as tiers go down, and back to Anthropic once revived', async () => {
    const demo = await startTiersDemo(['--tiers', '--primary-script=down'], { BREAKER_RESET_TIMEOUT_MS: '500' });
    try {
      const { banner } = demo;
      assert.deepEqual(
        banner.upstreams.map((u) => [u.name, u.kind, u.url, u.tier]),
        [
          ['anthropic', 'anthropic', banner.anthropic.url, 0],
          ['bedrock', 'bedrock', banner.bedrock.url, 1],
          ['vertex', 'vertex', banner.vertex.url, 2],
        ],
      );
      const sdk = new Anthropic({ baseURL: banner.gateway, apiKey: banner.key, maxRetries: 0 });
      // Injection mode: the gateway's providers hold credentials, so a client without the gateway key is refused.
      await assert.rejects(new Anthropic({ baseURL: banner.gateway, apiKey: 'not-the-gateway-key', maxRetries: 0 }).models.list(), (e: unknown) => (e as { status?: number }).status === 401);

      assert.deepEqual(await served(sdk), ['bedrock', 'bedrock'], 'Anthropic is down: Bedrock (tier 1) serves');
      await script(banner.bedrock.control, 'down');
      assert.deepEqual(await served(sdk), ['vertex', 'vertex'], 'Bedrock down too: Vertex (tier 2) serves');

      await script(banner.bedrock.control, 'healthy');
      await script(banner.anthropic.control, 'healthy');
      await eventually(
        async () => {
          const tiers = await served(sdk);
          return tiers.every((t) => t === 'anthropic');
        },
        15_000,
        'traffic to return to Anthropic',
      );
      const metrics = await (await fetch(`${banner.gateway}/metrics`)).text();
      assert.match(metrics, /upstream_failovers_total\{[^}]*from="anthropic"[^}]*to="bedrock"/);
      assert.match(metrics, /upstream_failovers_total\{[^}]*from="bedrock"[^}]*to="vertex"/);
    } finally {
      await demo.stop();
    }
  });

  test("the caller's own AWS and Google credentials never reach the mocks: only the demo's made-up ones do", async () => {
    const demo = await startTiersDemo(['--tiers', '--primary-script=down'], {
      AWS_ACCESS_KEY_ID: 'AKIACALLERREALKEY001',
      AWS_SECRET_ACCESS_KEY: 'caller/real/secret/must/not/be/used/0000',
      AWS_SESSION_TOKEN: 'caller-real-session-token-must-not-leak',
      GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/caller-adc.json',
    });
    try {
      const { banner } = demo;
      const sdk = new Anthropic({ baseURL: banner.gateway, apiKey: banner.key, maxRetries: 0 });
      assert.deepEqual(await served(sdk), ['bedrock', 'bedrock']);
      await script(banner.bedrock.control, 'down');
      assert.deepEqual(await served(sdk), ['vertex', 'vertex']);
      const seen = JSON.stringify(await (await fetch(`${banner.bedrock.control}/_mock/requests`)).json());
      assert.ok(!seen.includes('caller-real-session-token'), `the caller's session token reached Bedrock: ${seen}`);
      assert.ok(!seen.includes('AKIACALLERREALKEY001'), "the caller's key id reached Bedrock");
      assert.match(seen, /AKIAMOCKDEMOTIERS001/, "the demo's key id signs Bedrock calls");
    } finally {
      await demo.stop();
    }
  });

  test('an invalid --primary-script stops the demo with a message naming it', async () => {
    await assert.rejects(startTiersDemo(['--tiers', '--primary-script=meltdown']), /demo exited 1: .*--primary-script: script token "meltdown"/s);
  });
});
