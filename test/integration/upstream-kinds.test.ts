import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError } from '../../src/core/errors.js';
import { createMockUpstream, type MockUpstream, writeExternalAccountAdc } from '../../tools/mock-upstream/index.js';
import { UpstreamClient } from '../../src/upstream/client.js';
import { AnthropicAdapter } from '../../src/upstream/kinds/anthropic.js';
import { BedrockAdapter, type AwsCredentials, type AwsCredentialSource } from '../../src/upstream/kinds/bedrock.js';
import type { OutgoingRequest, UpstreamAdapter } from '../../src/upstream/kinds/kind.js';
import { VertexAdapter } from '../../src/upstream/kinds/vertex.js';
import { scratchEnvForSuite } from '../helpers/cloud-credentials.js';
import { testUpstreamClient } from '../helpers/upstream-client.js';

/**
 * Each adapter with the real pooled client over real sockets against the mock in the provider's
 * mode: what the client gets back must be the Anthropic mock's bytes (request ids aside), and the
 * provider must have received what it checks (signature, paths, anthropic_version, no model).
 */

const MODEL = 'claude-sonnet-5';
const KEY_ID = 'AKIAMOCKSTATIC000001';
const SECRET = 'mock/secret/key/for/tests/only/0000000000';
const BEARER = 'bedrock-api-key-test';
const SUBJECT_TOKEN = 'subject-token-for-the-sts-exchange';

function client(url: string): UpstreamClient {
  return testUpstreamClient(url, 4);
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  error: unknown;
}

async function readAll(body: Readable): Promise<{ text: string; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    return { text: Buffer.concat(chunks).toString('utf8'), error: undefined };
  } catch (err) {
    return { text: Buffer.concat(chunks).toString('utf8'), error: err };
  }
}

const BASE_HEADERS = ['content-type', 'application/json', 'anthropic-version', '2023-06-01', 'x-api-key', 'sk-ant-client', 'accept-encoding', 'identity'];

/** The mock's own `x-mock-*` controls: added to the wire request, since no Bedrock/Vertex adapter forwards a client's. */
function mockControls(headers: string[]): string[] {
  return headers.filter((_, i) => headers[i - (i % 2)]?.startsWith('x-mock-') === true);
}

async function call(adapter: UpstreamAdapter, upstream: UpstreamClient, path: string, body: string, extraHeaders: string[] = []): Promise<Answer> {
  const req: OutgoingRequest = {
    method: 'POST',
    path,
    endpoint: path.endsWith('count_tokens') ? 'count_tokens' : 'messages',
    headers: [...BASE_HEADERS, ...extraHeaders],
    body: Buffer.from(body),
    model: (JSON.parse(body) as { model?: string }).model,
  };
  const signal = AbortSignal.timeout(10_000);
  assert.equal(adapter.refuses(req), undefined);
  const prepared = await adapter.prepare(req, { signal });
  const res = await upstream.send({ method: 'POST', path: prepared.path, headers: [...prepared.headers, ...mockControls(extraHeaders)], body: prepared.body, signal });
  const translated = await prepared.translate({ status: res.status, headers: res.headers, body: res.body, decoded: res.decoded });
  const { text, error } = await readAll(translated.body);
  return { status: translated.status, headers: translated.headers, text, error };
}

function messages(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'Tell me about gateways' }], ...extra });
}

/** The request ids differ per mock; everything else must not. */
function withoutRequestId(text: string): string {
  return text.replace(/"request_id":"[^"]*"/g, '"request_id":"-"');
}

let anthropicMock: MockUpstream;
let bedrockMock: MockUpstream;
let vertexMock: MockUpstream;
let anthropic: UpstreamClient;
let bedrockClient: UpstreamClient;
let vertexClient: UpstreamClient;
let reference: AnthropicAdapter;
const scratch = scratchEnvForSuite('kinds-');

/** The SDK chain must see only what a test gives it: no host profiles, no instance metadata. */
function isolateAwsEnv(vars: Record<string, string>): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) Reflect.deleteProperty(process.env, name);
  process.env.AWS_CONFIG_FILE = join(scratch.dir, 'no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(scratch.dir, 'no-aws-credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  Object.assign(process.env, vars);
}

before(async () => {
  anthropicMock = await createMockUpstream();
  bedrockMock = await createMockUpstream({ kind: 'bedrock', bedrock: { credentials: [{ accessKeyId: KEY_ID, secretAccessKey: SECRET }], bearerTokens: [BEARER] } });
  vertexMock = await createMockUpstream({ kind: 'vertex' });
  anthropic = client(anthropicMock.url);
  bedrockClient = client(bedrockMock.url);
  vertexClient = client(vertexMock.url);
  reference = new AnthropicAdapter();
});

after(async () => {
  await Promise.all([anthropic.close(), bedrockClient.close(), vertexClient.close()]);
  await Promise.all([anthropicMock.close(), bedrockMock.close(), vertexMock.close()]);
});

function vertexCredentials(): string {
  return writeExternalAccountAdc(scratch.dir, `${vertexMock.url}/_mock/google/token`, SUBJECT_TOKEN);
}

function bedrockWithEnvKeys(): BedrockAdapter {
  isolateAwsEnv({ AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET });
  return new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1' });
}

function vertex(): VertexAdapter {
  return new VertexAdapter({ url: vertexMock.url, project: 'test-project', region: 'us-east5', keyFilename: vertexCredentials() });
}

describe('answers are the Anthropic mock\'s, whatever the kind', () => {
  const cases: [string, string, string][] = [
    ['plain', '/v1/messages', messages()],
    ['stream', '/v1/messages', messages({ stream: true })],
    ['count_tokens', '/v1/messages/count_tokens', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Count these words please' }] })],
    [
      'tool use and a thinking round-trip with a signature',
      '/v1/messages',
      JSON.stringify({
        model: MODEL,
        max_tokens: 256,
        thinking: { type: 'enabled', budget_tokens: 1024 },
        tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'Use the tool.', signature: 'EqQBCkYIARgCIkD+/sig==' },
              { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
            ],
          },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '18C' }] },
        ],
        stream: true,
      }),
    ],
  ];
  for (const [name, path, body] of cases) {
    test(`bedrock (SigV4 from env credentials) and vertex (ADC): ${name}`, async () => {
      const want = await call(reference, anthropic, path, body);
      assert.equal(want.status, 200, want.text);
      for (const [kind, adapter, upstream] of [
        ['bedrock', bedrockWithEnvKeys(), bedrockClient],
        ['vertex', vertex(), vertexClient],
      ] as const) {
        const got = await call(adapter, upstream, path, body);
        assert.equal(got.error, undefined, `${kind}: ${String(got.error)}`);
        assert.equal(got.status, 200, `${kind}: ${got.text}`);
        assert.equal(withoutRequestId(got.text), withoutRequestId(want.text), kind);
        assert.equal(String(got.headers['content-type']).split(';')[0], String(want.headers['content-type']).split(';')[0], kind);
      }
    });
  }
});

describe('what the providers receive', () => {
  test('bedrock: path, no model/stream, anthropic_version, betas in the body, every other byte kept', async () => {
    const body = '{"model":"claude-sonnet-5","max_tokens":64,"unknown_field":{"n":1.50e+3},"messages":[{"role":"user","content":"caf\\u00e9"}],"stream":true}';
    const got = await call(bedrockWithEnvKeys(), bedrockClient, '/v1/messages', body, ['anthropic-beta', 'beta-one, beta-two', 'anthropic-beta', 'beta-three']);
    assert.equal(got.status, 200, got.text);
    const seen = bedrockMock.requests.at(-1);
    assert.equal(seen?.path, '/model/claude-sonnet-5/invoke-with-response-stream');
    assert.equal(seen.body, '{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["beta-one","beta-two","beta-three"],"max_tokens":64,"unknown_field":{"n":1.50e+3},"messages":[{"role":"user","content":"caf\\u00e9"}]}');
    assert.equal(seen.headers['x-api-key'], undefined, 'the client credential never reaches Bedrock');
    assert.match(String(seen.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIAMOCKSTATIC000001\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
  });

  test('bedrock: a model id with ":" is escaped in the path and still verifies', async () => {
    const got = await call(bedrockWithEnvKeys(), bedrockClient, '/v1/messages', messages({ model: 'anthropic.claude-sonnet-5-v1:0' }));
    assert.equal(got.status, 200, got.text);
    assert.equal(bedrockMock.requests.at(-1)?.path, '/model/anthropic.claude-sonnet-5-v1%3A0/invoke');
  });

  test('bedrock: a signature over other bytes does not verify (the mock really checks)', async () => {
    isolateAwsEnv({ AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    const got = await call(new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1' }), bedrockClient, '/v1/messages', messages());
    assert.equal(got.status, 502, got.text);
    assert.match(got.text, /signature/);
  });

  test('bedrock: a Bedrock API key is sent as a bearer', async () => {
    const got = await call(new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER }), bedrockClient, '/v1/messages', messages());
    assert.equal(got.status, 200, got.text);
    assert.equal(bedrockMock.requests.at(-1)?.headers.authorization, `Bearer ${BEARER}`);
  });

  test('bedrock: count_tokens is CountTokens with the invoke body in base64', async () => {
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Count' }] });
    const got = await call(bedrockWithEnvKeys(), bedrockClient, '/v1/messages/count_tokens', body);
    assert.equal(got.status, 200, got.text);
    const seen = bedrockMock.requests.at(-1);
    assert.equal(seen?.path, '/model/claude-sonnet-5/count-tokens');
    const outer = JSON.parse(seen.body) as { input: { invokeModel: { body: string } } };
    assert.equal(Buffer.from(outer.input.invokeModel.body, 'base64').toString('utf8'), '{"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"Count"}]}');
  });

  test('vertex: paths, anthropic_version, model out of the body (kept for count-tokens), betas as a header', async () => {
    const adapter = vertex();
    await call(adapter, vertexClient, '/v1/messages', messages({ stream: true }), ['anthropic-beta', 'beta-one']);
    let seen = vertexMock.requests.at(-1);
    assert.equal(seen?.path, '/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-5:streamRawPredict');
    assert.equal(seen.body, '{"anthropic_version":"vertex-2023-10-16","max_tokens":64,"messages":[{"role":"user","content":"Tell me about gateways"}],"stream":true}');
    assert.equal(seen.headers['anthropic-beta'], 'beta-one');
    assert.match(String(seen.headers.authorization), /^Bearer ya29\.mock-/);
    await call(adapter, vertexClient, '/v1/messages/count_tokens', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }));
    seen = vertexMock.requests.at(-1);
    assert.equal(seen?.path, '/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict');
    assert.equal(seen.body, '{"anthropic_version":"vertex-2023-10-16","model":"claude-sonnet-5","messages":[{"role":"user","content":"x"}]}');
  });

  test('endpoints a provider does not serve are refused with a reason', () => {
    for (const adapter of [new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER }), vertex()]) {
      const reason = adapter.refuses({ method: 'GET', path: '/v1/models', endpoint: 'models', headers: [], body: null, model: undefined });
      assert.match(reason ?? '', /serves only POST \/v1\/messages/);
      assert.match(adapter.refuses({ method: 'POST', path: '/v1/messages/batches', endpoint: 'batches', headers: [], body: null, model: undefined }) ?? '', /not POST \/v1\/messages\/batches/);
    }
  });

  test('a body that is not a JSON object is NOT_TRANSLATABLE (400), never sent', async () => {
    const adapter = new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER });
    const req: OutgoingRequest = { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers: [], body: Buffer.from('[1,2]'), model: MODEL };
    await assert.rejects(adapter.prepare(req, { signal: AbortSignal.timeout(1_000) }), (err: unknown) => err instanceof GatewayError && err.code === 'NOT_TRANSLATABLE' && err.status === 400);
  });
});

describe('provider errors in Anthropic\'s shape', () => {
  const cases: [number, number, string][] = [
    [429, 429, 'rate_limit_error'],
    [529, 529, 'overloaded_error'],
    [500, 500, 'api_error'],
    [400, 400, 'invalid_request_error'],
  ];
  for (const [injected, status, type] of cases) {
    test(`injected ${injected} -> ${status} ${type} from bedrock and vertex`, async () => {
      for (const [adapter, upstream] of [
        [new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER }), bedrockClient],
        [vertex(), vertexClient],
      ] as const) {
        const got = await call(adapter, upstream, '/v1/messages', messages(), ['x-mock-status', String(injected)]);
        assert.equal(got.status, status, `${adapter.kind}: ${got.text}`);
        const parsed = JSON.parse(got.text) as { type: string; error: { type: string; message: string } };
        assert.equal(parsed.type, 'error');
        assert.equal(parsed.error.type, type, adapter.kind);
        assert.equal(String(got.headers['content-type']), 'application/json');
        if (status === 429 || status === 529) assert.equal(got.headers['retry-after'], '1', adapter.kind);
      }
    });
  }

  test("bedrock's own retry-after is kept", async () => {
    const got = await call(new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER }), bedrockClient, '/v1/messages', messages(), ['x-mock-status', '429', 'x-mock-retry-after', '7']);
    assert.equal(got.status, 429);
    assert.equal(got.headers['retry-after'], '7');
  });
});

describe('bedrock stream faults', () => {
  const adapter = (): BedrockAdapter => new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', bearerToken: BEARER });

  test('a stream cut mid-frame is a coded body error after the events before it', async () => {
    const got = await call(adapter(), bedrockClient, '/v1/messages', messages({ stream: true }), ['x-mock-bedrock-fault', 'cut-frame']);
    assert.equal(got.status, 200);
    assert.ok(got.error instanceof GatewayError, String(got.error));
    assert.equal(got.error.code, 'UPSTREAM_RESPONSE_INVALID');
    assert.match(got.text, /^event: message_start\n/);
    assert.equal(got.text.split('\n\n').filter((e) => e !== '').length, 5);
  });

  test('a malformed frame (CRC) is a coded body error', async () => {
    const got = await call(adapter(), bedrockClient, '/v1/messages', messages({ stream: true }), ['x-mock-bedrock-fault', 'bad-crc']);
    assert.ok(got.error instanceof GatewayError, String(got.error));
    assert.equal(got.error.code, 'UPSTREAM_RESPONSE_INVALID');
  });

  test('an exception frame is an SSE error event (rate_limit_error) ending the stream', async () => {
    const got = await call(adapter(), bedrockClient, '/v1/messages', messages({ stream: true }), ['x-mock-bedrock-fault', 'exception']);
    assert.equal(got.error, undefined);
    const events = got.text.split('\n\n').filter((e) => e !== '');
    assert.match(events.at(-1) ?? '', /^event: error\ndata: \{"type":"error","error":\{"type":"rate_limit_error"/);
  });

  test('the mock\'s midstream-error fault arrives as an overloaded_error event', async () => {
    const got = await call(adapter(), bedrockClient, '/v1/messages', messages({ stream: true }), ['x-mock-fault', 'midstream-error']);
    assert.match(got.text.split('\n\n').filter((e) => e !== '').at(-1) ?? '', /"type":"overloaded_error"/);
  });
});

describe('credentials', () => {
  test('bedrock: expired container credentials are refreshed through the provider chain', async () => {
    isolateAwsEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${bedrockMock.url}/_mock/aws/credentials` });
    const adapter = new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1' });
    const first = await call(adapter, bedrockClient, '/v1/messages', messages());
    assert.equal(first.status, 200, first.text);
    const firstKey = /Credential=([^/]+)/.exec(String(bedrockMock.requests.at(-1)?.headers.authorization))?.[1];
    bedrockMock.expireCredentials();
    const rejected = await call(adapter, bedrockClient, '/v1/messages', messages());
    assert.equal(rejected.status, 502, 'an expired credential is the upstream failing, not the client');
    assert.match(rejected.text, /expired AWS credentials/);
    const again = await call(adapter, bedrockClient, '/v1/messages', messages());
    assert.equal(again.status, 200, again.text);
    const secondKey = /Credential=([^/]+)/.exec(String(bedrockMock.requests.at(-1)?.headers.authorization))?.[1];
    assert.notEqual(secondKey, firstKey, 'new credentials were fetched');
  });

  test("bedrock: a client's x-amz-security-token never reaches the signed request, so it forces no credential refresh", async () => {
    // Session credentials the mock issued (as a container endpoint would): their token is checked, and signed.
    let refreshes = 0;
    let current: AwsCredentials | undefined;
    const source: AwsCredentialSource = async (options) => {
      if (options?.forceRefresh === true) {
        refreshes++;
        current = undefined;
      }
      if (current === undefined) {
        const issued = (await (await fetch(`${bedrockMock.url}/_mock/aws/credentials`)).json()) as Record<string, string>;
        current = { accessKeyId: issued.AccessKeyId ?? '', secretAccessKey: issued.SecretAccessKey ?? '', sessionToken: issued.Token };
      }
      return current;
    };
    const adapter = new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', credentials: source });
    const hostile = ['x-amz-security-token', 'client-session-token', 'x-amz-date', '20200101T000000Z', 'x-amz-content-sha256', 'UNSIGNED-PAYLOAD', 'x-amzn-bedrock-trace', 'ENABLED'];
    const statuses: number[] = [];
    const tokens: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      statuses.push((await call(adapter, bedrockClient, '/v1/messages', messages(), hostile)).status);
      const seen = bedrockMock.requests.at(-1)?.headers;
      tokens.push(seen?.['x-amz-security-token'] === current?.sessionToken && seen?.['x-amzn-bedrock-trace'] === undefined);
    }
    assert.equal(refreshes, 0, 'no credential refresh');
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    assert.deepEqual(tokens, [true, true, true, true, true], 'only the gateway session token, no client x-amzn-*');
  });

  test('vertex: only anthropic-version and anthropic-beta of the client headers arrive; accept is the adapter\'s', async () => {
    const hostile = ['x-goog-user-project', 'other-project', 'x-server-timeout', '30', 'x-http-method-override', 'GET', 'accept', 'text/html', 'anthropic-beta', 'beta-one'];
    const got = await call(vertex(), vertexClient, '/v1/messages', messages({ stream: true }), hostile);
    assert.equal(got.status, 200, got.text);
    const seen = vertexMock.requests.at(-1)?.headers ?? {};
    assert.equal(seen['x-goog-user-project'], undefined);
    assert.equal(seen['x-server-timeout'], undefined);
    assert.equal(seen['x-http-method-override'], undefined);
    assert.equal(seen['x-api-key'], undefined);
    assert.equal(seen.accept, 'text/event-stream');
    assert.equal(seen['anthropic-beta'], 'beta-one');
    assert.equal(seen['anthropic-version'], '2023-06-01');
  });

  test('vertex: a rejected token is replaced by a new one from ADC', async () => {
    const adapter = vertex();
    assert.equal((await call(adapter, vertexClient, '/v1/messages', messages())).status, 200);
    const firstToken = vertexMock.requests.at(-1)?.headers.authorization;
    vertexMock.expireCredentials();
    const rejected = await call(adapter, vertexClient, '/v1/messages', messages());
    assert.equal(rejected.status, 502, rejected.text);
    const again = await call(adapter, vertexClient, '/v1/messages', messages());
    assert.equal(again.status, 200, again.text);
    assert.notEqual(vertexMock.requests.at(-1)?.headers.authorization, firstToken);
  });

  test('bedrock: no credentials anywhere -> UPSTREAM_AUTH_FAILED 502 naming the kind, no secret', async () => {
    isolateAwsEnv({});
    const adapter = new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1' });
    const req: OutgoingRequest = { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers: BASE_HEADERS, body: Buffer.from(messages()), model: MODEL };
    await assert.rejects(adapter.prepare(req, { signal: AbortSignal.timeout(10_000) }), (err: unknown) => {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.code, 'UPSTREAM_AUTH_FAILED');
      assert.equal(err.status, 502);
      assert.match(err.message, /bedrock upstream/);
      return true;
    });
  });

  test('a credential fetch that never answers is cut at its deadline', { timeout: 10_000 }, async () => {
    const never = new Promise<never>(() => undefined);
    const adapter = new BedrockAdapter({ url: bedrockMock.url, region: 'us-east-1', credentials: () => never, credentialTimeoutMs: 50 });
    const req: OutgoingRequest = { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers: BASE_HEADERS, body: Buffer.from(messages()), model: MODEL };
    await assert.rejects(adapter.prepare(req, { signal: AbortSignal.timeout(10_000) }), (err: unknown) => err instanceof GatewayError && err.code === 'UPSTREAM_AUTH_FAILED');
  });

  test('vertex: a token endpoint that accepts and never answers -> UPSTREAM_AUTH_FAILED at the deadline', { timeout: 20_000 }, async () => {
    const sockets = new Set<Socket>();
    const stalled: Server = createServer((socket) => {
      sockets.add(socket); // accepted, never answered
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const port = (stalled.address() as { port: number }).port;
    const file = writeExternalAccountAdc(scratch.dir, `http://127.0.0.1:${port}/token`, SUBJECT_TOKEN, 'adc-stalled.json');
    try {
      const adapter = new VertexAdapter({ url: vertexMock.url, project: 'test-project', region: 'us-east5', keyFilename: file, credentialTimeoutMs: 200 });
      const req: OutgoingRequest = { method: 'POST', path: '/v1/messages', endpoint: 'messages', headers: BASE_HEADERS, body: Buffer.from(messages()), model: MODEL };
      await assert.rejects(adapter.prepare(req, { signal: AbortSignal.timeout(10_000) }), (err: unknown) => {
        assert.ok(err instanceof GatewayError);
        assert.equal(err.code, 'UPSTREAM_AUTH_FAILED');
        assert.match(err.message, /vertex upstream/);
        assert.doesNotMatch(err.message, new RegExp(SUBJECT_TOKEN));
        return true;
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    }
  });
});
