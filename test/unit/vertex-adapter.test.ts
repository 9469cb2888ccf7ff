import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GatewayError } from '../../src/core/errors.js';
import type { OutgoingRequest, PreparedCall, ProviderResponse } from '../../src/upstream/kinds/kind.js';
import type { ProviderErrorReport } from '../../src/upstream/kinds/provider-errors.js';
import { VERTEX_ANTHROPIC_VERSION, VERTEX_CLIENT_HEADERS, VertexAdapter, type VertexAdapterOptions } from '../../src/upstream/kinds/vertex.js';
import { readWhole } from '../../src/upstream/read-whole.js';
import { writeExternalAccountAdc } from '../../tools/mock-upstream/index.js';
import { headerMap } from '../helpers/header-map.js';
import { scratchEnvForSuite } from '../helpers/cloud-credentials.js';

/**
 * The Vertex adapter alone: `prepare` and `translate` driven directly. Its token source is the real
 * google-auth-library reading an external_account credentials file (the adapter's `keyFilename`)
 * whose token URL is a fake STS on loopback that hands out `ya29.fake-<n>`: no other network.
 */

const PROJECT = 'test-project';
const REGION = 'us-east5';
const BASE = `/v1/projects/${PROJECT}/locations/${REGION}/publishers/anthropic/models/`;
const HOSTILE_HEADERS = [
  'authorization', 'Bearer client', 'x-api-key', 'sk-client', 'x-goog-user-project', 'other-project', 'x-goog-api-client', 'x',
  'x-server-timeout', '1', 'x-http-method-override', 'DELETE', 'x-amz-date', '20000101T000000Z', 'host', 'evil.example', 'x-custom', 'v',
];

/** A fake Google STS: every token exchange gets the next token; while `holding`, exchanges get no answer. */
class FakeSts {
  exchanges = 0;
  holding = false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (this.holding) return;
        this.exchanges++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: `ya29.fake-${this.exchanges}`, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  }

  close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}

function request(body: string, options: { path?: string; model?: string; headers?: string[]; method?: string } = {}): OutgoingRequest {
  const path = options.path ?? '/v1/messages';
  return { method: options.method ?? 'POST', path, endpoint: path.includes('count_tokens') ? 'count_tokens' : 'messages', headers: options.headers ?? [], body: Buffer.from(body), model: options.model };
}

const abort = { signal: new AbortController().signal };

function bodyText(prepared: PreparedCall): string {
  assert.ok(Buffer.isBuffer(prepared.body));
  return prepared.body.toString();
}

function providerAnswer(status: number, headers: Record<string, string>, body: string): ProviderResponse {
  return { status, headers, body: Readable.from([Buffer.from(body)]), decoded: false };
}

async function translated(prepared: PreparedCall, res: ProviderResponse): Promise<{ status: number; headers: ProviderResponse['headers']; body: string }> {
  const out = await prepared.translate(res);
  return { status: out.status, headers: out.headers, body: (await readWhole(out.body, 1 << 20, 'test')).toString() };
}

const isCode = (code: string) => (err: unknown): boolean => err instanceof GatewayError && err.code === code;

describe('VertexAdapter', () => {
  const scratch = scratchEnvForSuite('vertex-adapter-');
  const sts = new FakeSts();
  let keyFilename = '';

  before(async () => {
    await sts.start();
    keyFilename = writeExternalAccountAdc(scratch.dir, sts.url, 'subject-token');
  });
  after(() => sts.close());

  function adapter(extra: Partial<VertexAdapterOptions> = {}): VertexAdapter {
    return new VertexAdapter({ url: 'https://us-east5-aiplatform.googleapis.com', project: PROJECT, region: REGION, keyFilename, ...extra });
  }

  describe('prepare: where each endpoint goes', () => {
    test('messages -> {model}:rawPredict; a streamed one -> :streamRawPredict; count_tokens -> count-tokens:rawPredict', async () => {
      const a = adapter();
      const plain = await a.prepare(request('{"model":"claude-sonnet-5@20260801","max_tokens":1}'), abort);
      assert.equal(plain.path, `${BASE}claude-sonnet-5@20260801:rawPredict`, '`@` kept in the segment');
      assert.equal(headerMap(plain.headers).get('accept'), 'application/json');
      const streamed = await a.prepare(request('{"model":"claude-sonnet-5@20260801","stream":true}'), abort);
      assert.equal(streamed.path, `${BASE}claude-sonnet-5@20260801:streamRawPredict`);
      assert.equal(headerMap(streamed.headers).get('accept'), 'text/event-stream');
      const count = await a.prepare(request('{"model":"claude-sonnet-5","stream":true,"messages":[]}', { path: '/v1/messages/count_tokens?beta=true' }), abort);
      assert.equal(count.path, `${BASE}count-tokens:rawPredict`);
      assert.equal(headerMap(count.headers).get('accept'), 'application/json');
    });

    test("the route's model wins over the body's; project, region and model are escaped as path segments", async () => {
      const a = new VertexAdapter({ url: 'https://aiplatform.googleapis.com', project: 'p/q', region: 'global', keyFilename });
      const prepared = await a.prepare(request('{"model":"claude-sonnet-5"}', { model: 'claude-opus-5:x@1' }), abort);
      assert.equal(prepared.path, '/v1/projects/p%2Fq/locations/global/publishers/anthropic/models/claude-opus-5%3Ax@1:rawPredict');
    });

    test('no model, a model outside the grammar, or a body that is not a JSON object is refused before any token is fetched', async () => {
      const before = sts.exchanges;
      const a = adapter();
      await assert.rejects(a.prepare(request('{"max_tokens":1}'), abort), isCode('NOT_TRANSLATABLE'));
      await assert.rejects(a.prepare(request('{"model":"a/../b"}'), abort), isCode('INVALID_MODEL'));
      await assert.rejects(a.prepare(request('"text"'), abort), isCode('NOT_TRANSLATABLE'));
      assert.equal(sts.exchanges, before);
    });

    test('refuses every endpoint but POST messages and count_tokens', () => {
      const a = adapter();
      assert.equal(a.refuses(request('{}')), undefined);
      assert.equal(a.refuses(request('{}', { path: '/v1/messages/count_tokens' })), undefined);
      assert.match(a.refuses(request('{}', { path: '/v1/models', method: 'GET' })) ?? '', /Vertex AI serves only/);
    });
  });

  describe('prepare: body edits, headers, token', () => {
    test('messages: model removed, anthropic_version added, stream kept; every other byte the client sent', async () => {
      const prepared = await adapter().prepare(request('{"model":"claude-sonnet-5","stream":true,"messages":[{"model":"nested"}],"n":1.0}'), abort);
      const sent = JSON.parse(bodyText(prepared)) as Record<string, unknown>;
      assert.deepEqual(sent, { stream: true, messages: [{ model: 'nested' }], n: 1, anthropic_version: VERTEX_ANTHROPIC_VERSION });
      assert.ok(bodyText(prepared).includes('"messages":[{"model":"nested"}],"n":1.0'));
    });

    test("count_tokens: the model stays in the body (the route's model), anthropic_version added", async () => {
      const prepared = await adapter().prepare(request('{"model":"claude-sonnet-5","messages":[]}', { path: '/v1/messages/count_tokens', model: 'claude-sonnet-5@20260801' }), abort);
      assert.deepEqual(JSON.parse(bodyText(prepared)), { model: 'claude-sonnet-5@20260801', messages: [], anthropic_version: VERTEX_ANTHROPIC_VERSION });
    });

    test('only anthropic-version and anthropic-beta survive from the client; the credential is the ADC token', async () => {
      assert.deepEqual([...VERTEX_CLIENT_HEADERS].sort(), ['anthropic-beta', 'anthropic-version']);
      const prepared = await adapter().prepare(request('{"model":"claude-sonnet-5"}', { headers: [...HOSTILE_HEADERS, 'anthropic-version', '2023-06-01', 'anthropic-beta', 'b1,b2'] }), abort);
      const sent = headerMap(prepared.headers);
      assert.deepEqual([...sent.keys()].sort(), ['accept', 'accept-encoding', 'anthropic-beta', 'anthropic-version', 'authorization', 'content-type']);
      assert.equal(sent.get('anthropic-version'), '2023-06-01');
      assert.equal(sent.get('anthropic-beta'), 'b1,b2');
      assert.equal(sent.get('accept-encoding'), 'identity');
      assert.match(sent.get('authorization') ?? '', /^Bearer ya29\.fake-\d+$/);
    });

    test('a token that cannot be had (no credentials file, a fetch past its deadline) is UPSTREAM_AUTH_FAILED', async () => {
      const missing = adapter({ keyFilename: join(scratch.dir, 'does-not-exist.json') });
      await assert.rejects(missing.prepare(request('{"model":"claude-sonnet-5"}'), abort), (err: unknown) => {
        assert.ok(err instanceof GatewayError);
        assert.equal(err.code, 'UPSTREAM_AUTH_FAILED');
        assert.doesNotMatch(err.message, /does-not-exist/, 'the reason names the error class only');
        return true;
      });
      sts.holding = true;
      try {
        await assert.rejects(adapter({ credentialTimeoutMs: 50 }).prepare(request('{"model":"claude-sonnet-5"}'), abort), isCode('UPSTREAM_AUTH_FAILED'));
      } finally {
        sts.holding = false;
      }
    });

    test('a rejected token (401) makes the next call fetch a new one', async () => {
      const a = adapter();
      const first = await a.prepare(request('{"model":"claude-sonnet-5"}'), abort);
      const again = await a.prepare(request('{"model":"claude-sonnet-5"}'), abort);
      assert.equal(headerMap(again.headers).get('authorization'), headerMap(first.headers).get('authorization'), 'the token is cached');
      const out = await translated(first, providerAnswer(401, {}, '{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}'));
      assert.equal(out.status, 502);
      const fresh = await a.prepare(request('{"model":"claude-sonnet-5"}'), abort);
      assert.notEqual(headerMap(fresh.headers).get('authorization'), headerMap(first.headers).get('authorization'));
    });
  });

  describe('translate', () => {
    test('a success passes through untouched, JSON or SSE', async () => {
      const prepared = await adapter().prepare(request('{"model":"claude-sonnet-5"}'), abort);
      const res = providerAnswer(200, { 'content-type': 'text/event-stream' }, 'event: ping\ndata: {}\n\n');
      assert.equal(await prepared.translate(res), res);
    });

    /** Vertex status (and the body's class) -> the status and Anthropic type the client gets. */
    const TABLE: [number, string, number, string][] = [
      [429, 'RESOURCE_EXHAUSTED', 429, 'rate_limit_error'],
      [503, 'UNAVAILABLE', 529, 'overloaded_error'],
      [529, 'overloaded_error', 529, 'overloaded_error'],
      [500, 'INTERNAL', 500, 'api_error'],
      [502, 'UNKNOWN', 500, 'api_error'],
      [504, 'DEADLINE_EXCEEDED', 504, 'timeout_error'],
      [400, 'INVALID_ARGUMENT', 400, 'invalid_request_error'],
      [400, 'FAILED_PRECONDITION', 400, 'invalid_request_error'],
      [404, 'NOT_FOUND', 404, 'not_found_error'],
      [403, 'PERMISSION_DENIED', 403, 'permission_error'],
      [401, 'UNAUTHENTICATED', 502, 'api_error'],
      // The status decides; a class naming another status only changes nothing.
      [403, 'RESOURCE_EXHAUSTED', 403, 'permission_error'],
    ];

    test('error answers take the status and Anthropic error shape of the mapping table', async () => {
      const prepared = await adapter().prepare(request('{"model":"claude-sonnet-5"}'), abort);
      for (const [status, className, wantStatus, wantType] of TABLE) {
        const body = JSON.stringify({ error: { code: status, message: 'whatever', status: className } });
        const out = await translated(prepared, providerAnswer(status, { 'content-type': 'application/json', 'content-length': '3', 'request-id': 'req_v1' }, body));
        const parsed = JSON.parse(out.body) as { type: string; error: { type: string }; request_id: string };
        const label = `${status} ${className}`;
        assert.equal(out.status, wantStatus, label);
        assert.equal(parsed.type, 'error', label);
        assert.equal(parsed.error.type, wantType, label);
        assert.equal(parsed.request_id, 'req_v1', label);
        assert.equal(out.headers['content-length'], String(Buffer.byteLength(out.body)), label);
        if (wantStatus === 429 || wantStatus === 529) assert.equal(out.headers['retry-after'], '1', label);
      }
    });

    test("the provider's message is replaced and reported, unless a client-safe class says something harmless", async () => {
      const reports: ProviderErrorReport[] = [];
      const prepared = await adapter({ onProviderError: (r) => reports.push(r) }).prepare(request('{"model":"claude-sonnet-5"}'), abort);
      const secret = 'Permission denied on resource project test-project for gateway@test-project.iam.gserviceaccount.com';
      const denied = await translated(prepared, providerAnswer(403, {}, JSON.stringify([{ error: { code: 403, message: secret, status: 'PERMISSION_DENIED' } }])));
      const deniedBody = JSON.parse(denied.body) as { error: { message: string }; request_id: string };
      assert.equal(deniedBody.error.message, 'Vertex AI denied access');
      assert.match(deniedBody.request_id, /^req_gateway_[0-9a-f]{32}$/, 'no request-id from Vertex: the gateway mints one');
      assert.equal(denied.headers['request-id'], deniedBody.request_id);
      assert.deepEqual(reports, [{ kind: 'vertex', providerStatus: 403, providerType: 'PERMISSION_DENIED', status: 403, upstreamRequestId: deniedBody.request_id, providerMessage: secret }]);

      reports.length = 0;
      const invalid = await translated(prepared, providerAnswer(400, {}, '{"error":{"code":400,"message":"max_tokens: must be at least 1","status":"INVALID_ARGUMENT"}}'));
      assert.equal((JSON.parse(invalid.body) as { error: { message: string } }).error.message, 'Vertex AI rejected the request: max_tokens: must be at least 1');
      const anthropicShaped = await translated(prepared, providerAnswer(400, {}, '{"type":"error","error":{"type":"invalid_request_error","message":"messages: field required"}}'));
      assert.equal((JSON.parse(anthropicShaped.body) as { error: { message: string } }).error.message, 'Vertex AI rejected the request: messages: field required');
      assert.equal(reports.length, 0);

      const precondition = await translated(prepared, providerAnswer(400, {}, '{"error":{"code":400,"message":"billing is disabled","status":"FAILED_PRECONDITION"}}'));
      assert.equal((JSON.parse(precondition.body) as { error: { message: string } }).error.message, 'Vertex AI rejected the request', 'not a client-safe class');
      const leaky = await translated(prepared, providerAnswer(400, {}, JSON.stringify({ error: { code: 400, message: 'bad field in projects/test-project/x', status: 'INVALID_ARGUMENT' } })));
      assert.equal((JSON.parse(leaky.body) as { error: { message: string } }).error.message, 'Vertex AI rejected the request', 'a client-safe class naming the deployment');
      const html = await translated(prepared, providerAnswer(502, { 'retry-after': '3' }, '<html>bad gateway</html>'));
      assert.equal(html.status, 500);
      assert.equal(reports.length, 3);
      assert.equal(reports.at(-1)?.providerMessage, '<html>bad gateway</html>');
    });
  });
});
