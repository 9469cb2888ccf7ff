import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExternalAccountClient } from 'google-auth-library';
import { loadConfig } from '../../src/config.js';
import { createMockUpstream, parseScript } from '../../tools/mock-upstream/index.js';
import { envOf, services } from '../helpers/compose.js';
import { REPO_ROOT } from '../helpers/k6.js';

/**
 * The compose profile `tiers` (there is no Docker engine here: the rendered configuration is
 * checked): Anthropic, Bedrock and Vertex mocks, and a gateway whose UPSTREAMS names exactly those
 * services in three tiers, accepted by the gateway's own configuration loader, with credentials the
 * mocks accept: the AWS pair the Bedrock mock verifies, and the committed (fake) external_account
 * ADC file mounted where GOOGLE_APPLICATION_CREDENTIALS points, whose token_url is the Vertex mock's
 * STS endpoint and whose subject-token file is mounted where it says. The committed ADC file is also
 * exercised for real: google-auth-library exchanges it at a local Vertex mock for a token that mock
 * accepts. Prometheus scrapes the tiers gateway.
 */

/** Bind mounts of a rendered service block (short `source:target[:mode]` or long syntax): container target -> host source. */
function mounts(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of block.matchAll(/^\s+- (\/[^:\s]+):(\/[^:\s]+)(?::\w+)?$/gm)) if (m[1] !== undefined && m[2] !== undefined) out.set(m[2], m[1]);
  for (const m of block.matchAll(/source: (\S+)\n\s+target: (\S+)/g)) if (m[1] !== undefined && m[2] !== undefined) out.set(m[2], m[1]);
  return out;
}

interface AdcFile {
  type: string;
  audience: string;
  subject_token_type: string;
  token_url: string;
  credential_source: { file: string };
}

function renderTiers(): Map<string, string> {
  return services(execFileSync('docker-compose', ['--profile', 'tiers', 'config'], { cwd: REPO_ROOT, encoding: 'utf8' }));
}

test('compose profile tiers: Anthropic, Bedrock and Vertex mocks in three tiers behind a gateway with credentials they accept', () => {
  const all = renderTiers();
  const [anthropic, bedrock, vertex, gateway] = ['mock-anthropic', 'mock-bedrock', 'mock-vertex', 'gateway-tiers'].map((n) => all.get(n));
  assert.ok(anthropic !== undefined && bedrock !== undefined && vertex !== undefined && gateway !== undefined, 'services mock-anthropic, mock-bedrock, mock-vertex, gateway-tiers');

  // The Anthropic tier goes down for a while and comes back; its control port serves health checks.
  const script = parseScript(envOf(anthropic, 'MOCK_SCRIPT') ?? '');
  if (typeof script === 'string') assert.fail(`MOCK_SCRIPT: ${script}`);
  assert.ok(script.repeat && script.steps.some((s) => s.do === 'down'), 'the Anthropic tier goes down and comes back, over and over');
  assert.match(anthropic, new RegExp(`127\\.0\\.0\\.1:${envOf(anthropic, 'MOCK_CONTROL_PORT') ?? 'none'}/_mock/stats`));
  assert.equal(envOf(bedrock, 'MOCK_KIND'), 'bedrock');
  assert.equal(envOf(vertex, 'MOCK_KIND'), 'vertex');

  // UPSTREAMS: exactly the three services, on the ports they listen on, one tier each, in kind order.
  const upstreams = JSON.parse(envOf(gateway, 'UPSTREAMS') ?? 'null') as { name: string; kind: string; url: string; tier: number; region?: string; project?: string }[];
  assert.deepEqual(
    upstreams.map((u) => [u.kind, u.url, u.tier]),
    [
      ['anthropic', `http://mock-anthropic:${envOf(anthropic, 'MOCK_PORT') ?? ''}`, 0],
      ['bedrock', `http://mock-bedrock:${envOf(bedrock, 'MOCK_PORT') ?? ''}`, 1],
      ['vertex', `http://mock-vertex:${envOf(vertex, 'MOCK_PORT') ?? ''}`, 2],
    ],
  );
  assert.equal(upstreams[1]?.region, envOf(bedrock, 'MOCK_REGION'), 'the Bedrock region the mock serves');
  assert.equal(upstreams[2]?.region, envOf(vertex, 'MOCK_REGION'), 'the Vertex region the mock serves');
  assert.equal(upstreams[2]?.project, envOf(vertex, 'MOCK_VERTEX_PROJECT'), 'the Vertex project the mock serves');
  for (const mock of ['mock-anthropic', 'mock-bedrock', 'mock-vertex']) assert.match(gateway, new RegExp(`${mock}:\\n\\s+condition: service_healthy`));

  // Bedrock: the gateway's AWS env credentials are a pair the mock verifies SigV4 against.
  assert.equal(`${envOf(gateway, 'AWS_ACCESS_KEY_ID') ?? ''}:${envOf(gateway, 'AWS_SECRET_ACCESS_KEY') ?? ''}`, envOf(bedrock, 'MOCK_BEDROCK_KEYS'));
  assert.equal(envOf(gateway, 'AWS_EC2_METADATA_DISABLED'), 'true', 'no instance-metadata lookups from the demo');

  // Vertex: GOOGLE_APPLICATION_CREDENTIALS is the committed fake ADC file, its subject token mounted where it says.
  const bound = mounts(gateway);
  const adcPath = envOf(gateway, 'GOOGLE_APPLICATION_CREDENTIALS') ?? '';
  assert.equal(bound.get(adcPath), join(REPO_ROOT, 'deploy', 'tiers', 'vertex-adc.json'));
  const adc = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'tiers', 'vertex-adc.json'), 'utf8')) as AdcFile;
  assert.equal(adc.type, 'external_account');
  assert.equal(bound.get(adc.credential_source.file), join(REPO_ROOT, 'deploy', 'tiers', 'vertex-subject-token'));
  assert.equal(adc.token_url, `http://mock-vertex:${envOf(vertex, 'MOCK_CONTROL_PORT') ?? 'none'}/_mock/google/token`, "the Vertex mock's STS endpoint");

  // The gateway's own loader accepts the stack's configuration (injection mode: a gateway key is set).
  const names = ['UPSTREAMS', 'GATEWAY_API_KEYS', 'TIERS_ANTHROPIC_KEY', 'BREAKER_RESET_TIMEOUT_MS'];
  loadConfig({ PORT: '8080', ...Object.fromEntries(names.map((n) => [n, envOf(gateway, n) ?? ''])) });

  const prometheus = readFileSync(join(REPO_ROOT, 'monitoring', 'prometheus.yml'), 'utf8');
  assert.match(prometheus, /^\s+- gateway-tiers$/m, 'Prometheus scrapes gateway-tiers');
});

test("the committed ADC file gets a token from the Vertex mock's STS endpoint that the mock accepts", async () => {
  const vertex = await createMockUpstream({ kind: 'vertex', controlPort: 0 });
  try {
    const adc = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'tiers', 'vertex-adc.json'), 'utf8')) as AdcFile;
    // Only the compose-network addresses change: the mock's control url for token_url, the repo path for the file.
    const tokenUrl = new URL(adc.token_url);
    const client = ExternalAccountClient.fromJSON({
      ...adc,
      token_url: `${vertex.controlUrl ?? ''}${tokenUrl.pathname}`,
      credential_source: { file: join(REPO_ROOT, 'deploy', 'tiers', 'vertex-subject-token') },
    });
    assert.ok(client !== null);
    const { token } = await client.getAccessToken();
    assert.ok(token !== null && token !== undefined && token !== '');
    const res = await fetch(`${vertex.url}/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-5:rawPredict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ anthropic_version: 'vertex-2023-10-16', max_tokens: 8, messages: [{ role: 'user', content: 'Hello' }] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { type: string }).type, 'message');
  } finally {
    await vertex.close();
  }
});
