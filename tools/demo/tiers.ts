import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockUpstream, type MockUpstream, writeExternalAccountAdc } from '../mock-upstream/index.js';
import { DEFAULT_PRIMARY_SCRIPT, demoPorts, primaryScript } from './failover.js';

/**
 * The three-tier demo's upstreams (`npm run demo -- --tiers`): a mock Anthropic API (tier 0) that
 * plays a failure script, a mock Amazon Bedrock (tier 1) and a mock Google Vertex AI (tier 2), and
 * the UPSTREAMS value naming them. Bedrock and Vertex have their control planes on ports of their
 * own too, so either can be taken down by hand to watch answers move one tier further.
 *
 * Credentials are made up here and accepted only by these mocks, never real secrets: a static AWS
 * key pair the Bedrock mock verifies SigV4 signatures against (given to the gateway as AWS env
 * credentials), and a generated `external_account` ADC file (temp dir) whose token_url is the
 * Vertex mock's STS endpoint. Upstreams holding credentials serve only in injection mode, so the
 * gateway runs with a demo gateway key that clients send, and the Anthropic tier gets a made-up
 * held key (the mock accepts any).
 */

/** The key clients send to the tiers demo's gateway (GATEWAY_API_KEYS). */
export const TIERS_GATEWAY_KEY = 'demo-tiers-gateway-key';
/** Made up, accepted only by the demo's mocks. */
export const TIERS_AWS_KEY_ID = 'AKIAMOCKDEMOTIERS001';
const TIERS_AWS_SECRET = 'mock/demo/tiers/secret/not/a/real/key/00';
const TIERS_ANTHROPIC_KEY = 'sk-ant-mock-demo-tiers-not-a-real-key';

export interface TiersUpstreams {
  anthropic: MockUpstream;
  bedrock: MockUpstream;
  vertex: MockUpstream;
  /** Control-only urls (/_mock/*), reachable while a script keeps the API port down. */
  anthropicControlUrl: string;
  bedrockControlUrl: string;
  vertexControlUrl: string;
  /** The gateway's UPSTREAMS: anthropic tier 0, bedrock tier 1, vertex tier 2. */
  upstreams: string;
  /**
   * Environment the gateway needs beside UPSTREAMS (gateway key, held Anthropic key, AWS and
   * Google credentials). Every AWS_* and GOOGLE_* variable of the caller's environment must be
   * replaced by these, so no real credential is ever picked up by the providers' chains.
   */
  env: Record<string, string>;
  script: string;
  close(): Promise<void>;
}

/**
 * Starts the three mocks: Anthropic on `basePort` (control +1), Bedrock on +2 (control +3),
 * Vertex on +4 (control +5); all ephemeral when basePort is 0. Throws on an invalid script.
 */
export async function startTiersUpstreams(basePort: number, script = DEFAULT_PRIMARY_SCRIPT): Promise<TiersUpstreams> {
  const checked = primaryScript(script);
  const port = demoPorts(basePort);
  const started: MockUpstream[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'claude-gateway-tiers-'));
  const closeAll = async (): Promise<void> => {
    await Promise.all(started.map((m) => m.close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const anthropic = await createMockUpstream({ port: port(0), controlPort: port(1), eventIntervalMs: 20, script: checked });
    started.push(anthropic);
    const bedrock = await createMockUpstream({
      port: port(2),
      controlPort: port(3),
      eventIntervalMs: 20,
      kind: 'bedrock',
      bedrock: { credentials: [{ accessKeyId: TIERS_AWS_KEY_ID, secretAccessKey: TIERS_AWS_SECRET }] },
    });
    started.push(bedrock);
    const vertex = await createMockUpstream({ port: port(4), controlPort: port(5), eventIntervalMs: 20, kind: 'vertex' });
    started.push(vertex);

    // An external_account ADC file: google-auth-library reads the subject token from the file and
    // exchanges it at token_url (the Vertex mock's STS endpoint) for access tokens the mock accepts.
    const adc = writeExternalAccountAdc(dir, `${vertex.controlUrl ?? vertex.url}/_mock/google/token`, 'mock-demo-subject-token');

    const upstreams = JSON.stringify([
      { name: 'anthropic', kind: 'anthropic', url: anthropic.url, tier: 0, api_key_env: 'DEMO_TIERS_ANTHROPIC_KEY' },
      { name: 'bedrock', kind: 'bedrock', url: bedrock.url, tier: 1, region: 'us-east-1' },
      { name: 'vertex', kind: 'vertex', url: vertex.url, tier: 2, region: 'us-east5', project: 'test-project' },
    ]);
    const env = {
      GATEWAY_API_KEYS: TIERS_GATEWAY_KEY,
      DEMO_TIERS_ANTHROPIC_KEY: TIERS_ANTHROPIC_KEY,
      AWS_ACCESS_KEY_ID: TIERS_AWS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: TIERS_AWS_SECRET,
      // No shared config, profile or instance metadata: the env credentials above are the only ones.
      AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      GOOGLE_APPLICATION_CREDENTIALS: adc,
    };
    return {
      anthropic,
      bedrock,
      vertex,
      anthropicControlUrl: anthropic.controlUrl ?? '',
      bedrockControlUrl: bedrock.controlUrl ?? '',
      vertexControlUrl: vertex.controlUrl ?? '',
      upstreams,
      env,
      script,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The banner lines of the tiers demo (after the gateway started). */
export function tiersBanner(gatewayUrl: string, up: TiersUpstreams): string[] {
  return [
    '',
    `  claude-gateway three-tier demo: gateway ${gatewayUrl}`,
    `    anthropic ${up.anthropic.url}  (tier 0; script "${up.script}"; control ${up.anthropicControlUrl})`,
    `    bedrock   ${up.bedrock.url}  (tier 1; SigV4 with mock AWS keys; control ${up.bedrockControlUrl})`,
    `    vertex    ${up.vertex.url}  (tier 2; ADC external_account via the mock's STS; control ${up.vertexControlUrl})`,
    `    UPSTREAMS=${up.upstreams}`,
    '',
    `  Watch which tier answers (x-gateway-upstream) while anthropic goes down and comes back (gateway key ${TIERS_GATEWAY_KEY}):`,
    `    while sleep 1; do curl -s -o /dev/null -w '%{http_code} %header{x-gateway-upstream}\\n' ${gatewayUrl}/v1/messages \\`,
    `      -H 'x-api-key: ${TIERS_GATEWAY_KEY}' -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\`,
    `      -d '{"model":"claude-sonnet-5","max_tokens":16,"messages":[{"role":"user","content":"Hello"}]}'; done`,
    '',
    '  Take a tier down or bring it back by hand (down bedrock too and vertex answers):',
    `    curl -s ${up.anthropicControlUrl}/_mock/script -d down      curl -s ${up.anthropicControlUrl}/_mock/script -d healthy`,
    `    curl -s ${up.bedrockControlUrl}/_mock/script -d down      curl -s ${up.bedrockControlUrl}/_mock/script -d healthy`,
    `  The moves:  curl -s ${gatewayUrl}/metrics | grep upstream_failovers_total`,
    '',
    '',
  ];
}
