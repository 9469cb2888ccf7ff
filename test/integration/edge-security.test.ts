import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import type { Gateway } from '../../src/server.js';
import { deferred, until } from '../helpers/deferred.js';
import { scrape, sum } from '../helpers/prom.js';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { scriptedUpstream } from '../helpers/scripted-upstream.js';
import { startStack, TEST_API_KEY, startTestGateway } from '../helpers/stack.js';

/**
 * Issue 10, the edge: no client reads another credential's answer, no client's junk degrades
 * service for others, and every refusal happens at the edge, Anthropic-shaped, before upstream.
 */

const params = { model: 'claude-sonnet-5', max_tokens: 32, messages: [{ role: 'user' as const, content: 'edge' }] };
const GATEWAY_KEY = 'gw-key-edge-0123456789abcdef';

function holdingMock() {
  const gate = deferred();
  return { gate, options: { onRequest: () => gate.promise } };
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers }, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function errorType(text: string): string {
  return (JSON.parse(text) as { error: { type: string } }).error.type;
}

describe('the tenant is the credential upstream bills', () => {
  test('clients sharing one gateway key but holding different Anthropic keys never share a flight', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ env: { GATEWAY_API_KEYS: GATEWAY_KEY }, mock: options });
    try {
      const as = (key: string) => stack.client({ apiKey: key, defaultHeaders: { 'x-gateway-api-key': GATEWAY_KEY } });
      const a = as('sk-ant-tenant-a-0123456789').messages.create(params).withResponse();
      const b = as('sk-ant-tenant-b-0123456789').messages.create(params).withResponse();
      await until(() => stack.mock.requests.length === 2, 5_000, 'each credential to make its own upstream call');
      gate.resolve();
      const answers = await Promise.all([a, b]);
      const seen = stack.mock.requests.map((r) => r.headers.authorization).sort();
      assert.deepEqual(seen, ['Bearer sk-ant-tenant-a-0123456789', 'Bearer sk-ant-tenant-b-0123456789']);
      for (const { response } of answers) assert.equal(response.headers.get('x-gateway-coalesce-role'), 'leader');
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('a cached answer serves its own credential only; no key or an invalid key goes upstream and gets 401', async () => {
    const stack = await startStack({ env: { GATEWAY_API_KEYS: GATEWAY_KEY, CACHE: 'on' } });
    try {
      const owner = stack.client({ defaultHeaders: { 'x-gateway-api-key': GATEWAY_KEY } });
      await owner.messages.create(params);
      const again = await owner.messages.create(params).withResponse();
      assert.equal(again.response.headers.get('x-gateway-coalesce-role'), 'cache', 'the owner is served from the cache');

      const upstreamBefore = stack.mock.requests.length;
      const noKey = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params), { 'x-gateway-api-key': GATEWAY_KEY });
      assert.equal(noKey.status, 401, noKey.text);
      assert.equal(errorType(noKey.text), 'authentication_error');
      assert.notEqual(noKey.headers.get('x-gateway-coalesce-role'), 'cache');

      const invalid = stack.client({ apiKey: 'sk-ant-invalid', defaultHeaders: { 'x-gateway-api-key': GATEWAY_KEY } });
      await assert.rejects(invalid.messages.create(params), (err: unknown) => {
        assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
        return true;
      });
      assert.equal(stack.mock.requests.length, upstreamBefore + 2, 'both went upstream, which refused them');
    } finally {
      await stack.close();
    }
  });

  test('requests without an upstream credential never coalesce (they still reach upstream, which answers 401)', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options, env: { COALESCE_LINGER_MS: '10000' } });
    try {
      const body = JSON.stringify(params);
      const calls = [post(`${stack.gateway.url}/v1/messages`, body), post(`${stack.gateway.url}/v1/messages`, body)];
      await until(() => stack.mock.requests.length === 2, 5_000, 'both keyless requests to reach upstream');
      gate.resolve();
      for (const answer of await Promise.all(calls)) {
        assert.equal(answer.status, 401);
        assert.equal(answer.headers.get('x-gateway-coalesce-role'), 'bypass');
      }
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('the tenant in logs is an HMAC keyed with TENANT_HASH_KEY, the same on every instance that shares the key', async () => {
    const key = 'tenant-hash-key-edge-test-0123456789abcdef';
    const tenantLogged = async (env: Record<string, string>): Promise<{ tenant: unknown; warnings: number }> => {
      const stack = await startStack({ env });
      try {
        await stack.client().messages.create(params);
        const records = stack.logs.records();
        const line = records.find((r) => r.msg === 'request' && r.path === '/v1/messages');
        const warnings = records.filter((r) => r.level === 'warn' && String(r.msg).includes('TENANT_HASH_KEY')).length;
        return { tenant: line?.tenant, warnings };
      } finally {
        await stack.close();
      }
    };
    const first = await tenantLogged({ TENANT_HASH_KEY: key });
    const second = await tenantLogged({ TENANT_HASH_KEY: key });
    const other = await tenantLogged({ TENANT_HASH_KEY: key.replace('edge', 'else') });
    const unset = await tenantLogged({});
    assert.equal(typeof first.tenant, 'string');
    assert.equal(first.tenant, second.tenant, 'instances sharing TENANT_HASH_KEY agree');
    assert.notEqual(first.tenant, other.tenant, 'another deployment secret gives other ids');
    const plain = createHash('sha256').update(TEST_API_KEY).digest('hex');
    assert.ok(!String(first.tenant).includes(plain.slice(0, 16)), 'not a plain SHA-256 of the key anyone could test guesses against');
    assert.ok(!String(first.tenant).includes(TEST_API_KEY));
    assert.equal(first.warnings, 0);
    assert.equal(unset.warnings, 1, 'without TENANT_HASH_KEY: one warning at start');
    assert.notEqual(unset.tenant, first.tenant);
  });
});

describe('identical means byte-identical', () => {
  test('bodies that differ only in number spelling or key order are different calls, forwarded byte for byte', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ mock: options });
    try {
      const bodies = [
        '{"model":"claude-sonnet-5","max_tokens":64,"messages":[{"role":"user","content":"n"}]}',
        '{"model":"claude-sonnet-5","max_tokens":64.0,"messages":[{"role":"user","content":"n"}]}',
        '{"max_tokens":64,"model":"claude-sonnet-5","messages":[{"role":"user","content":"n"}]}',
      ];
      const calls = bodies.map((b) => post(`${stack.gateway.url}/v1/messages`, b, { 'x-api-key': TEST_API_KEY }));
      await until(() => stack.mock.requests.length === 3, 5_000, 'three distinct upstream calls');
      gate.resolve();
      for (const answer of await Promise.all(calls)) assert.equal(answer.headers.get('x-gateway-coalesce-role'), 'leader');
      assert.deepEqual(stack.mock.requests.map((r) => r.body).sort(), [...bodies].sort());
    } finally {
      gate.resolve();
      await stack.close();
    }
  });
});

async function gatewayFor(upstreamUrl: string, env: Record<string, string> = {}): Promise<Gateway> {
  return startTestGateway({ UPSTREAM_URL: upstreamUrl, ...env });
}

describe('clean request targets', () => {
  test('dot-segments (raw or encoded), encoded separators, *, absolute-form: 400 at the edge, never forwarded with the injected key', async () => {
    const seen: string[] = [];
    const upstream = await scriptedUpstream((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}');
    });
    const gateway = await gatewayFor(`${upstream.url}/api/anthropic`, { ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789', GATEWAY_API_KEYS: GATEWAY_KEY });
    try {
      const auth = { 'x-gateway-api-key': GATEWAY_KEY };
      const refused = [
        '/v1/%2e%2e/%2e%2e/%2e%2e/x',
        '/v1/%2E%2E/%2E%2e/x',
        '/v1/%2E./%2e./x',
        '/v1/.%2e/x',
        '/v1/../../x',
        '/v1/./models',
        '/v1/models/..',
        '/v1/a%2f..%2f..%2fx',
        '/v1/a%5c..%5cx',
        '/v1\\..\\..\\x',
        '/v1/%2e',
      ];
      for (const target of refused) {
        const answer = await rawExchange(gateway.url, rawRequest('GET', target, auth));
        assert.equal(answer.status, 400, `${target}: ${answer.body}`);
        assert.equal(errorType(answer.body), 'invalid_request_error');
      }
      for (const [method, target] of [['OPTIONS', '*'], ['GET', 'http://other.example/v1/models'], ['GET', 'v1/models']]) {
        const answer = await rawExchange(gateway.url, rawRequest(method as string, target as string, auth));
        assert.equal(answer.status, 400, `${method} ${target}: ${answer.body}`);
        assert.equal(errorType(answer.body), 'invalid_request_error');
      }
      assert.deepEqual(seen, [], 'nothing reached the upstream host');

      // Clean targets still pass: dots inside a segment, and anything at all in the query.
      for (const target of ['/v1/models/claude-3.5-sonnet', '/v1/models?after_id=..%2f..']) {
        const answer = await rawExchange(gateway.url, rawRequest('GET', target, auth));
        assert.equal(answer.status, 200, `${target}: ${answer.body}`);
      }
      assert.deepEqual(seen, ['/api/anthropic/v1/models/claude-3.5-sonnet', '/api/anthropic/v1/models?after_id=..%2f..']);
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });
});

describe('bounded work per request', () => {
  test('JSON nested a million deep: 400 invalid_request_error, nothing upstream, the gateway serves on', async () => {
    const stack = await startStack();
    try {
      const depth = 1_000_000;
      const body = `{"model":"claude-sonnet-5","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const answer = await post(`${stack.gateway.url}/v1/messages`, body, { 'x-api-key': TEST_API_KEY });
      assert.equal(answer.status, 400, answer.text);
      assert.equal(errorType(answer.text), 'invalid_request_error');
      assert.equal(stack.mock.requests.length, 0);
      assert.equal((await stack.client().messages.create(params)).type, 'message');
    } finally {
      await stack.close();
    }
  });
});

describe('at capacity the gateway answers as the API does when overloaded', () => {
  test('MAX_CONCURRENT_REQUESTS: 529 overloaded_error with retry-after; the SDK raises OverloadedError', async () => {
    const { gate, options } = holdingMock();
    const stack = await startStack({ env: { MAX_CONCURRENT_REQUESTS: '1' }, mock: options });
    try {
      const held = post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params), { 'x-api-key': TEST_API_KEY });
      await until(() => stack.mock.requests.length === 1, 5_000, 'one request in flight');
      await assert.rejects(stack.client().messages.create(params), (err: unknown) => {
        assert.ok(err instanceof Anthropic.OverloadedError, String(err));
        assert.equal(err.status, 529);
        assert.equal(err.headers.get('retry-after'), '1');
        assert.equal((err.error as { error: { type: string } }).error.type, 'overloaded_error');
        return true;
      });
      gate.resolve();
      assert.equal((await held).status, 200);
    } finally {
      gate.resolve();
      await stack.close();
    }
  });
});

/** GET with a Host header of our choosing (fetch does not allow setting Host). */
async function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe("batch results_url is not steered by a client's Host", () => {
  const resultsUrlVia = async (env: Record<string, string>, hosts: (port: string) => string[]): Promise<{ port: string; urls: string[] }> => {
    const stack = await startStack({ env });
    try {
      const port = new URL(stack.gateway.url).port;
      const urls: string[] = [];
      for (const host of hosts(port)) {
        // The mock ends a batch at its first retrieval: a fresh batch per Host.
        const batch = await stack.client().messages.batches.create({ requests: [{ custom_id: 'one', params }] });
        const answer = await getWithHost(`${stack.gateway.url}/v1/messages/batches/${batch.id}`, host);
        assert.equal(answer.status, 200, answer.body);
        urls.push(String((JSON.parse(answer.body) as { results_url: unknown }).results_url));
      }
      return { port, urls };
    } finally {
      await stack.close();
    }
  };

  test('default: loopback names with the listen port are honoured; any other Host falls back to the listen address', async () => {
    const { port, urls } = await resultsUrlVia({}, (p) => ['attacker.example', `attacker.example:${p}`, `localhost:${p}`, `127.0.0.1:${p}`, 'localhost:1']);
    const [attacker, attackerPort, localhost, loopback, otherPort] = urls;
    assert.ok(attacker?.startsWith(`http://127.0.0.1:${port}/v1/messages/batches/`), attacker);
    assert.ok(attackerPort?.startsWith(`http://127.0.0.1:${port}/`), attackerPort);
    assert.ok(localhost?.startsWith(`http://localhost:${port}/`), localhost);
    assert.ok(loopback?.startsWith(`http://127.0.0.1:${port}/`), loopback);
    assert.ok(otherPort?.startsWith(`http://127.0.0.1:${port}/`), otherPort);
  });

  test('ALLOWED_HOSTS replaces the default list; PUBLIC_URL overrides every Host', async () => {
    const allowed = await resultsUrlVia({ ALLOWED_HOSTS: 'gateway.internal, GW.example:8443' }, (p) => ['gateway.internal', 'gw.example:8443', `localhost:${p}`]);
    assert.ok(allowed.urls[0]?.startsWith('http://gateway.internal/'), allowed.urls[0]);
    assert.ok(allowed.urls[1]?.startsWith('http://gw.example:8443/'), allowed.urls[1]);
    assert.ok(allowed.urls[2]?.startsWith(`http://127.0.0.1:${allowed.port}/`), allowed.urls[2]);
    const fixed = await resultsUrlVia({ PUBLIC_URL: 'https://claude.example.com/' }, () => ['attacker.example', 'localhost']);
    for (const url of fixed.urls) assert.ok(url.startsWith('https://claude.example.com/v1/messages/batches/'), url);
  });
});

describe('model labels cannot be exhausted by clients', () => {
  test('models upstream refuses never take a label slot; a 2xx earns one; MODELS are labelled from the start', async () => {
    const stack = await startStack({ env: { MAX_MODELS: '2', MODELS: 'claude-opus-5' } });
    try {
      const client = stack.client();
      for (let i = 0; i < 6; i++) {
        const answer = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify({ ...params, model: `junk-model-${i}` }), { 'x-api-key': TEST_API_KEY, 'x-mock-status': '404' });
        assert.equal(answer.status, 404);
      }
      const refusedOpus = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify({ ...params, model: 'claude-opus-5' }), { 'x-api-key': TEST_API_KEY, 'x-mock-status': '400' });
      assert.equal(refusedOpus.status, 400);
      await client.messages.create(params);
      await client.messages.create({ ...params, model: 'claude-haiku-5-5' });
      await client.messages.create({ ...params, model: 'claude-sonnet-5', max_tokens: 33 });

      const samples = await scrape(stack.gateway.url);
      const calls = 'claude_api_calls_total';
      assert.equal(sum(samples, calls, { model: 'claude-sonnet-5', status: '200' }), 2, 'the real model has its own label');
      assert.equal(sum(samples, calls, { model: 'claude-haiku-5-5', status: '200' }), 1, 'a second real model too (MAX_MODELS=2)');
      assert.equal(sum(samples, calls, { model: 'other', status: '404' }), 6, 'refused junk counts as other');
      assert.equal(sum(samples, calls, { model: 'claude-opus-5', status: '400' }), 1, 'an allowlisted model is labelled even when refused');
      assert.ok(!samples.some((s) => s.labels.model?.startsWith('junk-model-') === true), 'no junk label exists');
      assert.ok(sum(samples, 'claude_tokens_total', { model: 'claude-sonnet-5' }) > 0, 'its tokens are counted under its name');
    } finally {
      await stack.close();
    }
  });
});
