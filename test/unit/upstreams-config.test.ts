import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { configProblems } from '../helpers/config-problems.js';

describe('UPSTREAMS', () => {
  test('the UPSTREAM_URL shorthand is one upstream named anthropic', () => {
    const c = loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:9/prefix' });
    assert.equal(c.upstreams.length, 1);
    assert.equal(c.upstreams[0]?.name, 'anthropic');
    assert.equal(c.upstreams[0].pathPrefix, '/prefix');
    assert.equal(c.injectsCredentials, false);
  });

  test('tiers, weights, kinds and defaults; keys come from the variables named, never inline', () => {
    const c = loadConfig({
      GATEWAY_API_KEYS: 'gw-key-0123456789abcdef',
      KEY_A: 'sk-a-secret',
      UPSTREAMS: JSON.stringify([
        { name: 'a', api_key_env: 'KEY_A', weight: 3 },
        { name: 'bedrock-east', kind: 'bedrock', region: 'us-east-1', tier: 1, models: { 'claude-sonnet-5': 'anthropic.claude-sonnet-5-v1:0' } },
        { name: 'vertex', kind: 'vertex', region: 'global', project: 'my-project', tier: 2 },
      ]),
    });
    assert.deepEqual(c.upstreams.map((u) => [u.name, u.kind, u.tier, u.weight, u.origin]), [
      ['a', 'anthropic', 0, 3, 'https://api.anthropic.com'],
      ['bedrock-east', 'bedrock', 1, 1, 'https://bedrock-runtime.us-east-1.amazonaws.com'],
      ['vertex', 'vertex', 2, 1, 'https://aiplatform.googleapis.com'],
    ]);
    assert.equal(c.upstreams[0]?.apiKey, 'sk-a-secret');
    assert.equal(c.upstreams[1]?.models?.get('claude-sonnet-5'), 'anthropic.claude-sonnet-5-v1:0');
    assert.equal(c.injectsCredentials, true);
  });

  test('every problem names the variable and the entry, and never echoes a secret', () => {
    const found = configProblems({
      GATEWAY_API_KEYS: 'gw-key-0123456789abcdef',
      UPSTREAMS: JSON.stringify([
        { name: 'Bad Name' },
        { name: 'dup', api_key_env: 'MISSING_KEY' },
        { name: 'dup', api_key_env: 'MISSING_KEY' },
        { name: 'b', kind: 'bedrock' },
        { name: 'v', kind: 'vertex', region: 'europe-west1' },
        { name: 'x', url: 'ftp://nope', api_key_env: 'K' },
        { name: 'y', colour: 'blue' },
      ]),
    });
    const text = found.join('\n');
    assert.match(text, /UPSTREAMS\[0\] \("Bad Name"\): .*name must match/);
    assert.match(text, /UPSTREAMS\[1\] \("dup"\): api_key_env names MISSING_KEY, which is not set/);
    assert.match(text, /UPSTREAMS\[2\] \("dup"\): the name "dup" is used twice/);
    assert.match(text, /UPSTREAMS\[3\] \("b"\): a bedrock upstream needs region/);
    assert.match(text, /UPSTREAMS\[4\] \("v"\): a vertex upstream needs project/);
    assert.match(text, /UPSTREAMS\[5\] \("x"\): url must be an absolute http\(s\) URL/);
    assert.match(text, /UPSTREAMS\[6\] \("y"\): unknown field\(s\) colour/);
  });

  test('pass-through and gateway-held credentials never mix', () => {
    const found = configProblems({
      GATEWAY_API_KEYS: 'gw-key-0123456789abcdef',
      KEY_A: 'sk-a-secret',
      UPSTREAMS: JSON.stringify([{ name: 'own', url: 'http://127.0.0.1:9' }, { name: 'held', api_key_env: 'KEY_A' }]),
    });
    assert.equal(found.length, 1);
    assert.match(found[0] as string, /"own" forwards the client's own credential while "held" uses a gateway-held one/);
    assert.ok(!(found[0] as string).includes('sk-a-secret'));
  });

  test('held credentials need GATEWAY_API_KEYS or ALLOW_OPEN_GATEWAY; UPSTREAM_URL and UPSTREAMS exclude each other', () => {
    assert.match(configProblems({ KEY_A: 'sk-a', UPSTREAMS: JSON.stringify([{ name: 'a', api_key_env: 'KEY_A' }]) }).join('\n'), /UPSTREAMS holds credentials .* GATEWAY_API_KEYS is not set/);
    assert.deepEqual(configProblems({ KEY_A: 'sk-a', ALLOW_OPEN_GATEWAY: 'true', UPSTREAMS: JSON.stringify([{ name: 'a', api_key_env: 'KEY_A' }]) }), []);
    assert.match(configProblems({ UPSTREAM_URL: 'http://127.0.0.1:9', UPSTREAMS: JSON.stringify([{ name: 'a' }]) }).join('\n'), /UPSTREAM_URL and UPSTREAMS\/UPSTREAMS_FILE are both set/);
    assert.match(configProblems({ UPSTREAMS: '{"name":"a"}' }).join('\n'), /UPSTREAMS must be a non-empty array/);
    assert.match(configProblems({ UPSTREAMS: 'not json' }).join('\n'), /UPSTREAMS must be a JSON array/);
  });

  test('UPSTREAMS_FILE reads JSON or YAML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'upstreams-'));
    const yaml = join(dir, 'upstreams.yaml');
    writeFileSync(yaml, '- name: primary\n  url: http://127.0.0.1:9\n- name: secondary\n  url: http://127.0.0.1:10\n  tier: 1\n');
    const c = loadConfig({ UPSTREAMS_FILE: yaml });
    assert.deepEqual(c.upstreams.map((u) => [u.name, u.tier]), [['primary', 0], ['secondary', 1]]);
    assert.match(configProblems({ UPSTREAMS_FILE: join(dir, 'missing.json') }).join('\n'), /UPSTREAMS_FILE cannot be read/);
  });
});

describe('UPSTREAMS pricing', () => {
  test('an upstream may price its calls apart (a provider premium); bad prices name the entry', async () => {
    const { GatewayMetrics } = await import('../../src/observability/metrics.js');
    const { PriceTable } = await import('../../src/core/pricing.js');
    const c = loadConfig({
      UPSTREAMS: JSON.stringify([
        { name: 'direct', url: 'http://127.0.0.1:9' },
        { name: 'regional', url: 'http://127.0.0.1:10', tier: 1, pricing: { sonnet: { input: 3.3, output: 16.5, cache_creation: 4.125, cache_read: 0.33 } } },
      ]),
    });
    const metrics = new GatewayMetrics({
      modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0,
      upstreamPrices: new Map(c.upstreams.flatMap((u) => (u.pricing === undefined ? [] : [[u.name, new PriceTable(u.pricing)] as const]))),
    });
    const usage = { input: 1_000_000, output: 0, cache_creation: 0, cache_read: 0 };
    metrics.recordBilled('default', 'claude-sonnet-5', 'direct', usage);
    metrics.recordBilled('default', 'claude-sonnet-5', 'regional', usage);
    const text = await metrics.render();
    assert.match(text, /claude_cost_usd_total\{mode="default",model="claude-sonnet-5",upstream="direct"\} 3\n/);
    assert.match(text, /claude_cost_usd_total\{mode="default",model="claude-sonnet-5",upstream="regional"\} 3.3\n/);
    assert.match(configProblems({ UPSTREAMS: JSON.stringify([{ name: 'p', pricing: { sonnet: { input: -1 } } }]) }).join('\n'), /UPSTREAMS\[0\] \("p"\): pricing/);
  });
});
