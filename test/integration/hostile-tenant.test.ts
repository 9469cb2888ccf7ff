import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { scrape } from '../helpers/prom.js';
import { cloudMocksForSuite } from '../helpers/cloud-credentials.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';

/**
 * Nothing one tenant sends can hurt another (issue 24, items 1 and 2). Tenant A (its own gateway
 * key) sends requests a hostile client would: its own SigV4 pieces (`x-amz-date`,
 * `x-amz-security-token`, `x-amz-content-sha256`, `authorization`), AWS and Google control headers
 * (`x-amzn-*`, `x-goog-*`, `x-server-timeout`), model ids no provider accepts, bad JSON, well past
 * the breaker's volume threshold. Tenant B (another gateway key) is served 200 throughout, the
 * breaker of the model stays closed, and the provider mock (verifying real SigV4 / ADC tokens)
 * never sees a client header outside the adapter's allowlist.
 */

const MODEL = 'claude-sonnet-5';
const KEY_A = 'gw-key-tenant-a-0123456789';
const KEY_B = 'gw-key-tenant-b-0123456789';
const KEY_ID = 'AKIAMOCKHOSTILE00001';
const SECRET = 'mock/hostile/secret/for/tests/only/00000';
const ROUNDS = 40;
/** The breaker judges after 4 calls and opens on any failure among them. */
const BREAKER_ENV = { BREAKER_VOLUME_THRESHOLD: '4', BREAKER_ERROR_THRESHOLD: '1', BREAKER_WINDOW_MS: '600000', BREAKER_RESET_TIMEOUT_MS: '600000', UPSTREAM_RETRIES: '0' };

const mocks = cloudMocksForSuite('hostile-tenant-', { accessKeyId: KEY_ID, secretAccessKey: SECRET }, 'hostile-subject-token');

function body(content: string, model: string = MODEL): string {
  return JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content }] });
}

/** Tenant A's requests, in rotation: each carries A's gateway key, and a different hostility. */
function hostile(kind: 'bedrock' | 'vertex', i: number): string {
  const json = { 'content-type': 'application/json', 'x-gateway-api-key': KEY_A };
  const headerAttacks: Record<string, string>[] =
    kind === 'bedrock'
      ? [
          { 'x-amz-date': '20200101T000000Z' },
          { 'x-amz-security-token': 'tenant-a-session-token' },
          { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-date': '20991231T235959Z' },
          { authorization: `AWS4-HMAC-SHA256 Credential=${KEY_ID}/20200101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}` },
          { 'x-amzn-bedrock-guardrailidentifier': 'tenant-a-guardrail', 'x-amzn-bedrock-trace': 'ENABLED', 'x-amzn-requestid': 'forged', 'x-amz-target': 'AmazonBedrockRuntime.InvokeModel' },
        ]
      : [
          { 'x-server-timeout': '0.001' },
          { 'x-goog-user-project': 'tenant-a-project', 'x-goog-api-client': 'forged/1.0', 'x-goog-request-params': 'name=projects/other' },
          { authorization: 'Bearer ya29.tenant-a-own-token', 'x-http-method-override': 'GET' },
          { 'x-goog-fieldmask': 'error', 'x-server-timeout': '0' },
        ];
  const bodyAttacks: string[] = [
    rawRequest('POST', '/v1/messages', json, body(`a ${i}`, '..')),
    rawRequest('POST', '/v1/messages', json, `{"model":"\\ud800","max_tokens":16,"messages":[{"role":"user","content":"a ${i}"}]}`),
    rawRequest('POST', '/v1/messages', json, body(`a ${i}`, 'x'.repeat(1_100))),
    rawRequest('POST', '/v1/messages', json, body(`a ${i}`).slice(0, -2)),
  ];
  const all = [...headerAttacks.map((h) => rawRequest('POST', '/v1/messages', { ...json, ...h }, body(`tenant a ${i}`))), ...bodyAttacks];
  return all[i % all.length] as string;
}

async function breakerStates(stack: UpstreamsStack): Promise<number[]> {
  return (await scrape(stack.gateway.url)).filter((s) => s.name === 'circuit_breaker_state').map((s) => s.value);
}

/** Header names a provider request may carry: the adapter's own, the transport's, and its kind's client allowlist. */
const ALLOWED_AT_PROVIDER: Record<'bedrock' | 'vertex', ReadonlySet<string>> = {
  bedrock: new Set(['host', 'connection', 'content-length', 'accept-encoding', 'content-type', 'accept', 'authorization', 'x-amz-date', 'x-amz-content-sha256']),
  vertex: new Set(['host', 'connection', 'content-length', 'accept-encoding', 'content-type', 'accept', 'authorization', 'anthropic-version', 'anthropic-beta']),
};

for (const kind of ['bedrock', 'vertex'] as const) {
  describe(`${kind}: one tenant's hostile requests never reach another tenant`, () => {
    test(`tenant A sends ${ROUNDS} hostile requests; tenant B is served 200 throughout and the breaker stays closed`, async () => {
      const mock = kind === 'bedrock' ? mocks.bedrock : mocks.vertex;
      const entry =
        kind === 'bedrock'
          ? { name: 'bedrock', kind: 'bedrock', url: mocks.bedrock.url, region: 'us-east-1' }
          : { name: 'vertex', kind: 'vertex', url: mocks.vertex.url, region: 'us-east5', project: 'test-project' };
      const stack = await startUpstreamsGateway([entry], { GATEWAY_API_KEYS: `${KEY_A},${KEY_B}`, ...BREAKER_ENV }, KEY_B);
      const seenBefore = mock.requests.length;
      try {
        const tenantB = stack.client();
        const statusesA: number[] = [];
        for (let i = 0; i < ROUNDS; i++) {
          const answer = await rawExchange(stack.gateway.url, hostile(kind, i));
          statusesA.push(answer.status);
          const { data, response } = await tenantB.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: `tenant b ${i}` }] }).withResponse();
          assert.equal(response.status, 200, `round ${i}: tenant B served`);
          assert.equal(data.type, 'message');
        }
        assert.deepEqual(
          statusesA.filter((s) => s >= 500),
          [],
          `no hostile request becomes an upstream failure (statuses ${statusesA.join(',')})`,
        );
        assert.ok(statusesA.some((s) => s === 400), 'the model ids and the bad JSON were refused with 400');
        const states = await breakerStates(stack);
        assert.ok(states.length > 0, 'the breaker exists');
        assert.deepEqual(
          states.filter((v) => v !== 0),
          [],
          'every breaker is closed',
        );
        // What the provider received: only the adapter's headers, never the client's SigV4 pieces or control headers.
        const received = mock.requests.slice(seenBefore);
        assert.ok(received.length >= ROUNDS, `the provider served both tenants (${received.length})`);
        for (const req of received) {
          for (const name of Object.keys(req.headers)) assert.ok(ALLOWED_AT_PROVIDER[kind].has(name), `${kind} received the client header ${name}`);
          const authorization = String(req.headers.authorization);
          if (kind === 'bedrock') {
            assert.match(authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY_ID}/\\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=`));
            assert.doesNotMatch(String(req.headers['x-amz-date']), /^(20200101|2099)|,/, 'the gateway signature date only');
          } else {
            assert.match(authorization, /^Bearer ya29\.mock-/, 'the ADC token only');
          }
        }
      } finally {
        await stack.close();
      }
    });
  });
}
