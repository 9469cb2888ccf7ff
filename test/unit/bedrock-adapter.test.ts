import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import { GatewayError } from '../../src/core/errors.js';
import { BEDROCK_ANTHROPIC_VERSION, BEDROCK_CLIENT_HEADERS, BedrockAdapter, type AwsCredentials, type AwsCredentialSource } from '../../src/upstream/kinds/bedrock.js';
import type { OutgoingRequest, PreparedCall, ProviderResponse } from '../../src/upstream/kinds/kind.js';
import type { ProviderErrorReport } from '../../src/upstream/kinds/provider-errors.js';
import { headerMap } from '../helpers/header-map.js';
import { readWhole } from '../../src/upstream/read-whole.js';

/**
 * The Bedrock adapter alone: `prepare` and `translate` driven directly, with a static credential
 * source (or a bearer key) and no network. The signature is checked by signing the same request
 * again at the same instant with the same key: it must come out identical.
 */

const URL_BASE = 'https://bedrock-runtime.us-east-1.amazonaws.com';
const REGION = 'us-east-1';
const KEYS: AwsCredentials = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret-key', sessionToken: 'test-session-token' };
const ARN = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-5-v1:0';
/** What the client may send that must never reach Bedrock. */
const HOSTILE_HEADERS = [
  'authorization', 'Bearer client', 'x-amz-date', '20000101T000000Z', 'x-amz-security-token', 'client-token', 'x-amz-content-sha256', 'UNSIGNED-PAYLOAD',
  'x-amzn-bedrock-trace', 'ENABLED', 'x-goog-user-project', 'p', 'host', 'evil.example', 'x-custom', 'kept?',
];

/** A static source that records every fetch's options. */
function staticSource(keys: AwsCredentials = KEYS): AwsCredentialSource & { calls: ({ forceRefresh?: boolean } | undefined)[] } {
  const calls: ({ forceRefresh?: boolean } | undefined)[] = [];
  return Object.assign((options?: { forceRefresh?: boolean }) => {
    calls.push(options);
    return Promise.resolve(keys);
  }, { calls });
}

function adapter(extra: Partial<ConstructorParameters<typeof BedrockAdapter>[0]> = {}): BedrockAdapter {
  return new BedrockAdapter({ url: URL_BASE, region: REGION, credentials: staticSource(), ...extra });
}

function request(body: string, options: { path?: string; model?: string; headers?: string[]; method?: string } = {}): OutgoingRequest {
  const path = options.path ?? '/v1/messages';
  return { method: options.method ?? 'POST', path, endpoint: path.includes('count_tokens') ? 'count_tokens' : 'messages', headers: options.headers ?? [], body: Buffer.from(body), model: options.model };
}

const abort = { signal: new AbortController().signal };

function prepare(a: BedrockAdapter, req: OutgoingRequest): Promise<PreparedCall> {
  return a.prepare(req, abort);
}

function bodyOf(prepared: PreparedCall): Record<string, unknown> {
  assert.ok(Buffer.isBuffer(prepared.body));
  return JSON.parse(prepared.body.toString()) as Record<string, unknown>;
}

function providerAnswer(status: number, headers: Record<string, string>, body: string): ProviderResponse {
  return { status, headers, body: Readable.from([Buffer.from(body)]), decoded: false };
}

async function translated(prepared: PreparedCall, res: ProviderResponse): Promise<{ status: number; headers: ProviderResponse['headers']; body: string }> {
  const out = await prepared.translate(res);
  return { status: out.status, headers: out.headers, body: (await readWhole(out.body, 1 << 20, 'test')).toString() };
}

/** The client-facing `error.message` of a translated error answer. */
async function messageOf(prepared: PreparedCall, res: ProviderResponse): Promise<string> {
  return (JSON.parse((await translated(prepared, res)).body) as { error: { message: string } }).error.message;
}

const isCode = (code: string) => (err: unknown): boolean => err instanceof GatewayError && err.code === code;

describe('BedrockAdapter.prepare: where each endpoint goes', () => {
  test('messages -> /model/{id}/invoke; a streamed one -> invoke-with-response-stream; count_tokens -> count-tokens', async () => {
    const a = adapter();
    const plain = await prepare(a, request('{"model":"anthropic.claude-sonnet-5-v1:0","max_tokens":1}'));
    assert.equal(plain.path, '/model/anthropic.claude-sonnet-5-v1%3A0/invoke');
    assert.equal(headerMap(plain.headers).get('accept'), 'application/json');
    const streamed = await prepare(a, request('{"model":"anthropic.claude-sonnet-5-v1:0","stream":true}'));
    assert.equal(streamed.path, '/model/anthropic.claude-sonnet-5-v1%3A0/invoke-with-response-stream');
    assert.equal(headerMap(streamed.headers).get('accept'), 'application/vnd.amazon.eventstream');
    const count = await prepare(a, request('{"model":"anthropic.claude-sonnet-5-v1:0","stream":true,"messages":[]}', { path: '/v1/messages/count_tokens?beta=true' }));
    assert.equal(count.path, '/model/anthropic.claude-sonnet-5-v1%3A0/count-tokens');
    assert.equal(headerMap(count.headers).get('accept'), 'application/json', 'count_tokens never streams');
  });

  test("the route's model (the model map's) wins over the body's; an inference-profile ARN stays one escaped path segment", async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5"}', { model: ARN }));
    assert.equal(prepared.path, `/model/${encodeURIComponent(ARN)}/invoke`);
    assert.equal(prepared.path, '/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-5-v1%3A0/invoke');
    assert.equal(prepared.path.split('/').length, 4, 'no `/` of the ARN survives unescaped');
  });

  test('no model, a model outside the grammar, or a body that is not a JSON object is refused before any credential is fetched', async () => {
    const source = staticSource();
    const a = adapter({ credentials: source });
    await assert.rejects(prepare(a, request('{"max_tokens":1}')), isCode('NOT_TRANSLATABLE'));
    await assert.rejects(prepare(a, request('{"model":"../../x"}')), isCode('INVALID_MODEL'));
    await assert.rejects(prepare(a, request('[1,2]')), isCode('NOT_TRANSLATABLE'));
    assert.equal(source.calls.length, 0);
  });

  test('refuses every endpoint but POST messages and count_tokens', () => {
    const a = adapter();
    assert.equal(a.refuses(request('{}')), undefined);
    assert.equal(a.refuses(request('{}', { path: '/v1/messages/count_tokens?x=1' })), undefined);
    assert.match(a.refuses(request('{}', { path: '/v1/models', method: 'GET' })) ?? '', /Bedrock serves only/);
    assert.match(a.refuses(request('{}', { path: '/v1/messages/batches' })) ?? '', /Bedrock serves only/);
  });
});

describe('BedrockAdapter.prepare: the body edits', () => {
  test('model and stream removed, anthropic_version added, anthropic-beta header values become anthropic_beta; other bytes kept', async () => {
    const body = '{"model":"claude-sonnet-5","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi","model":"nested"}],"n":1.0}';
    const prepared = await prepare(adapter(), request(body, { headers: ['anthropic-beta', 'beta-a, beta-b', 'Anthropic-Beta', 'beta-c', 'anthropic-version', '2023-06-01'] }));
    const sent = bodyOf(prepared);
    assert.equal('model' in sent, false);
    assert.equal('stream' in sent, false);
    assert.equal(sent.anthropic_version, BEDROCK_ANTHROPIC_VERSION);
    assert.deepEqual(sent.anthropic_beta, ['beta-a', 'beta-b', 'beta-c']);
    assert.ok((prepared.body as Buffer).toString().includes('"messages":[{"role":"user","content":"hi","model":"nested"}],"n":1.0'), 'nested fields and number spellings untouched');
  });

  test('without an anthropic-beta header the body gains no anthropic_beta', async () => {
    const sent = bodyOf(await prepare(adapter(), request('{"model":"claude-sonnet-5","max_tokens":1}')));
    assert.deepEqual(Object.keys(sent).sort(), ['anthropic_version', 'max_tokens']);
  });

  test('count_tokens wraps the edited invoke body, base64, in {"input":{"invokeModel":{"body":...}}}', async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5","stream":true,"messages":[]}', { path: '/v1/messages/count_tokens', headers: ['anthropic-beta', 'b1'] }));
    const outer = bodyOf(prepared) as { input: { invokeModel: { body: string } } };
    assert.deepEqual(Object.keys(outer), ['input']);
    const inner = JSON.parse(Buffer.from(outer.input.invokeModel.body, 'base64').toString()) as Record<string, unknown>;
    assert.deepEqual(inner, { messages: [], anthropic_version: BEDROCK_ANTHROPIC_VERSION, anthropic_beta: ['b1'] });
  });
});

describe('BedrockAdapter.prepare: headers and credentials', () => {
  test('no client header survives (BEDROCK_CLIENT_HEADERS is empty): exactly the adapter own headers and the SigV4 ones', async () => {
    assert.equal(BEDROCK_CLIENT_HEADERS.size, 0);
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5"}', { headers: [...HOSTILE_HEADERS, 'anthropic-version', '2023-06-01', 'anthropic-beta', 'b'] }));
    const sent = headerMap(prepared.headers);
    assert.deepEqual([...sent.keys()].sort(), ['accept', 'accept-encoding', 'authorization', 'content-type', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']);
    assert.equal(sent.get('accept-encoding'), 'identity');
    assert.equal(sent.get('content-type'), 'application/json');
    assert.equal(sent.get('x-amz-security-token'), KEYS.sessionToken, "the gateway's session token, not the client's");
    assert.match(sent.get('authorization') ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDTESTTESTTEST\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
    assert.match(sent.get('x-amz-date') ?? '', /^\d{8}T\d{6}Z$/);
    assert.notEqual(sent.get('x-amz-date'), '20000101T000000Z');
  });

  test('the signature covers the body sent, its path (with the base URL prefix) and host, and verifies against the key', async () => {
    const base = 'http://127.0.0.1:4443/prefix/';
    const prepared = await prepare(adapter({ url: base }), request('{"model":"claude-sonnet-5","max_tokens":3}', { model: ARN }));
    const body = prepared.body as Buffer;
    const sent = headerMap(prepared.headers);
    assert.equal(sent.get('x-amz-content-sha256'), createHash('sha256').update(body).digest('hex'));
    const signedHeaders = /SignedHeaders=([a-z0-9;-]+)/.exec(sent.get('authorization') ?? '')?.[1]?.split(';');
    assert.deepEqual(signedHeaders, ['accept', 'content-type', 'host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']);
    // Sign what undici will send, at the instant the adapter signed it, with the same key: the same signature.
    const date = sent.get('x-amz-date') ?? '';
    const signingDate = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
    const verifier = new SignatureV4({ service: 'bedrock', region: REGION, sha256: Hash.bind(null, 'sha256'), credentials: KEYS });
    const expected = await verifier.sign(
      { method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4443, path: `/prefix${prepared.path}`, query: {}, headers: { host: '127.0.0.1:4443', 'content-type': 'application/json', accept: 'application/json' }, body },
      { signingDate },
    );
    assert.equal(sent.get('authorization'), expected.headers.authorization);
    // ...and not for another body.
    const other = await verifier.sign(
      { method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4443, path: `/prefix${prepared.path}`, query: {}, headers: { host: '127.0.0.1:4443', 'content-type': 'application/json', accept: 'application/json' }, body: Buffer.from('{}') },
      { signingDate },
    );
    assert.notEqual(sent.get('authorization'), other.headers.authorization);
  });

  test('a Bedrock API key travels as a bearer instead of a signature, and no credential is fetched', async () => {
    const source = staticSource();
    const prepared = await prepare(adapter({ bearerToken: 'bedrock-api-key', credentials: source }), request('{"model":"claude-sonnet-5"}', { headers: HOSTILE_HEADERS }));
    const sent = headerMap(prepared.headers);
    assert.deepEqual([...sent.keys()].sort(), ['accept', 'accept-encoding', 'authorization', 'content-type']);
    assert.equal(sent.get('authorization'), 'Bearer bedrock-api-key');
    assert.equal(source.calls.length, 0);
  });

  test('credentials that cannot be had (a failing source, one past its deadline) are UPSTREAM_AUTH_FAILED, naming no secret', async () => {
    const failing: AwsCredentialSource = () => Promise.reject(Object.assign(new Error('secret-detail AKIDTESTTESTTEST'), { name: 'CredentialsProviderError' }));
    await assert.rejects(prepare(adapter({ credentials: failing }), request('{"model":"claude-sonnet-5"}')), (err: unknown) => {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.code, 'UPSTREAM_AUTH_FAILED');
      assert.match(err.message, /CredentialsProviderError/);
      assert.doesNotMatch(err.message, /secret-detail|AKID/);
      return true;
    });
    const never: AwsCredentialSource = () => new Promise<AwsCredentials>(() => undefined);
    await assert.rejects(prepare(adapter({ credentials: never, credentialTimeoutMs: 1 }), request('{"model":"claude-sonnet-5"}')), isCode('UPSTREAM_AUTH_FAILED'));
  });

  test("the call's own stop while credentials are fetched stays an abort, not an upstream failure", async () => {
    const never: AwsCredentialSource = () => new Promise<AwsCredentials>(() => undefined);
    const stop = new AbortController();
    const pending = adapter({ credentials: never }).prepare(request('{"model":"claude-sonnet-5"}'), { signal: stop.signal });
    stop.abort();
    await assert.rejects(pending, (err: unknown) => !(err instanceof GatewayError));
  });

  test('rejected credentials (an expired token) make the next fetch skip the provider cache, once', async () => {
    const source = staticSource();
    const a = adapter({ credentials: source });
    const first = await prepare(a, request('{"model":"claude-sonnet-5"}'));
    await translated(first, providerAnswer(403, { 'x-amzn-errortype': 'ExpiredTokenException:http://internal.amazon.com/coral/', 'x-amzn-requestid': 'r1' }, '{"message":"The security token included in the request is expired"}'));
    await prepare(a, request('{"model":"claude-sonnet-5"}'));
    await prepare(a, request('{"model":"claude-sonnet-5"}'));
    assert.deepEqual(source.calls.map((c) => c?.forceRefresh === true), [false, true, false]);
  });
});

describe('BedrockAdapter translate: answers', () => {
  test('an invoke answer passes through, gaining request-id from x-amzn-requestid', async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5"}'));
    const res = providerAnswer(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'aws-req-1' }, '{"id":"msg_1"}');
    const out = await prepared.translate(res);
    assert.equal(out.body, res.body, 'the same stream, untouched');
    assert.equal(out.headers['request-id'], 'aws-req-1');
  });

  test('a count-tokens answer becomes {"input_tokens": n}; one without its count is a 502 before the head', async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5"}', { path: '/v1/messages/count_tokens' }));
    const out = await translated(prepared, providerAnswer(200, { 'content-type': 'application/json', 'content-length': '17' }, '{"inputTokens":42}'));
    assert.equal(out.status, 200);
    assert.equal(out.body, '{"input_tokens":42}');
    assert.equal(out.headers['content-length'], String(out.body.length));
    await assert.rejects(translated(prepared, providerAnswer(200, {}, '{"tokens":1}')), isCode('UPSTREAM_RESPONSE_INVALID'));
  });

  test('a stream request answered with anything but an event stream is refused before the head', async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5","stream":true}'));
    await assert.rejects(translated(prepared, providerAnswer(200, { 'content-type': 'application/json' }, '{}')), isCode('UPSTREAM_RESPONSE_INVALID'));
  });

  /** Bedrock status and error type -> the status and Anthropic type the client gets. */
  const TABLE: [number, string | undefined, number, string][] = [
    [429, 'ThrottlingException', 429, 'rate_limit_error'],
    [400, 'ServiceQuotaExceededException', 429, 'rate_limit_error'],
    [503, 'ServiceUnavailableException', 529, 'overloaded_error'],
    [429, 'ModelNotReadyException', 529, 'overloaded_error'],
    [500, 'InternalServerException', 500, 'api_error'],
    [424, 'ModelErrorException', 500, 'api_error'],
    [408, 'ModelTimeoutException', 504, 'timeout_error'],
    [400, 'ValidationException', 400, 'invalid_request_error'],
    [404, 'ResourceNotFoundException', 404, 'not_found_error'],
    [403, 'AccessDeniedException', 403, 'permission_error'],
    [403, 'com.amazon.coral.service#UnrecognizedClientException', 502, 'api_error'],
    [403, 'InvalidSignatureException', 502, 'api_error'],
    [403, 'MissingAuthenticationTokenException', 502, 'api_error'],
    [401, undefined, 502, 'api_error'],
    [503, undefined, 529, 'overloaded_error'],
    [502, 'SomethingNew', 500, 'api_error'],
    [418, undefined, 418, 'invalid_request_error'],
  ];

  test('error answers take the status and Anthropic error shape of the mapping table', async () => {
    const prepared = await prepare(adapter(), request('{"model":"claude-sonnet-5"}'));
    for (const [status, type, wantStatus, wantType] of TABLE) {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-requestid': 'aws-req-2', 'content-length': '99' };
      if (type !== undefined) headers['x-amzn-errortype'] = type;
      const out = await translated(prepared, providerAnswer(status, headers, '{"message":"whatever"}'));
      const body = JSON.parse(out.body) as { type: string; error: { type: string; message: string }; request_id: string };
      const label = `${status} ${type ?? '(no type)'}`;
      assert.equal(out.status, wantStatus, label);
      assert.equal(body.type, 'error', label);
      assert.equal(body.error.type, wantType, label);
      assert.equal(body.request_id, 'aws-req-2', label);
      assert.equal(out.headers['request-id'], 'aws-req-2', label);
      assert.equal(out.headers['content-type'], 'application/json', label);
      assert.equal(out.headers['content-length'], String(Buffer.byteLength(out.body)), label);
      if (wantStatus === 429 || wantStatus === 529) assert.equal(out.headers['retry-after'], '1', label);
    }
  });

  test("the provider's message is replaced by the gateway's reason and reported for the log, unless a client-safe class says something harmless", async () => {
    const reports: ProviderErrorReport[] = [];
    const prepared = await prepare(adapter({ onProviderError: (r) => reports.push(r) }), request('{"model":"claude-sonnet-5"}'));
    const secret = 'User: arn:aws:sts::123456789012:assumed-role/gateway is not authorized';
    assert.equal(await messageOf(prepared, providerAnswer(403, { 'x-amzn-errortype': 'AccessDeniedException', 'x-amzn-requestid': 'r-9' }, JSON.stringify({ message: secret }))), 'Bedrock denied access');
    assert.deepEqual(reports, [{ kind: 'bedrock', providerStatus: 403, providerType: 'AccessDeniedException', status: 403, upstreamRequestId: 'r-9', providerMessage: secret }]);

    reports.length = 0;
    assert.equal(await messageOf(prepared, providerAnswer(400, { 'x-amzn-errortype': 'ValidationException' }, '{"Message":"max_tokens: must be at least 1"}')), 'Bedrock rejected the request: max_tokens: must be at least 1');
    assert.equal(reports.length, 0, 'a message the client reads is not reported');

    const echoed = await messageOf(prepared, providerAnswer(400, { 'x-amzn-errortype': 'ValidationException' }, JSON.stringify({ message: `The provided model identifier ${ARN} is invalid` })));
    assert.equal(echoed, 'Bedrock rejected the request', 'a client-safe class whose text names the deployment is replaced too');
    assert.equal(reports.length, 1);

    const throttled = await translated(prepared, providerAnswer(429, { 'x-amzn-errortype': 'ThrottlingException', 'retry-after': '7' }, 'not json at all'));
    assert.equal(throttled.headers['retry-after'], '7');
    assert.match((JSON.parse(throttled.body) as { request_id: string }).request_id, /^req_gateway_[0-9a-f]{32}$/, 'no provider id: the gateway mints one');
    assert.equal(reports.at(-1)?.providerMessage, 'not json at all');
  });
});
