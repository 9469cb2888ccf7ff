import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { adminClient } from '../helpers/admin-api.js';
import { eventually } from '../helpers/deferred.js';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { stackForSuite } from '../helpers/stack.js';

/**
 * Database keys at the edge (issue 26): issued through the admin API, accepted wherever a static
 * GATEWAY_API_KEYS key is, refused once revoked, rotated away or expired (one 401 for all), limited
 * to their models (403). And the admin API's own defences.
 */

const ADMIN_KEY = 'admin-key-0123456789abcdef-0123456789abcdef';
const STATIC_KEY = 'gw-static-key-0123456789abcdef';
const params = { model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'governed' }] };

const errorOf = (text: string): { type: string; message: string } => (JSON.parse(text) as { error: { type: string; message: string } }).error;

describe('database keys at the edge (injecting gateway)', () => {
  const stack = stackForSuite({
    env: {
      ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789',
      GATEWAY_API_KEYS: STATIC_KEY,
      ADMIN_API_KEY: ADMIN_KEY,
      ADMIN_PORT: '0',
      GOVERNANCE_DATA_DIR: 'memory:',
      GOVERNANCE_POLL_MS: '100',
      COALESCE: 'off',
    },
  });
  const admin = () => adminClient((stack.gateway.admin as { url: string }).url, ADMIN_KEY);
  const sdk = (apiKey: string) => stack.client({ apiKey });
  const refusedWith401 = async (apiKey: string): Promise<boolean> => {
    try {
      await sdk(apiKey).messages.create(params);
      return false;
    } catch (err) {
      return err instanceof Anthropic.AuthenticationError;
    }
  };

  test('the official SDK with a database key gets 200; the static key still works; revoked: 401 (same message as an unknown key)', async () => {
    const team = await admin().createTeam('sdk-team');
    const issued = await admin().createKey(team.id, { name: 'laptop', user_id: 'alice' });
    assert.match(issued.secret, /^cgw_/);
    await eventually(async () => !(await refusedWith401(issued.secret)), 5_000, 'the new key to be accepted');
    const answer = await sdk(issued.secret).messages.create(params);
    assert.equal(answer.type, 'message');
    assert.equal((await sdk(STATIC_KEY).messages.create(params)).type, 'message', 'static keys work unchanged');

    const revoked = await admin().call('POST', `/admin/keys/${issued.key.id}/revoke`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_at !== null);
    await eventually(() => refusedWith401(issued.secret), 5_000, 'the revoked key to be refused');

    const unknown = await rawExchange(stack.gateway.url, rawRequest('POST', '/v1/messages', { 'content-type': 'application/json', 'x-api-key': 'cgw_unknownunknownunknownunknownunknown00' }, JSON.stringify(params)));
    const gone = await rawExchange(stack.gateway.url, rawRequest('POST', '/v1/messages', { 'content-type': 'application/json', 'x-api-key': issued.secret }, JSON.stringify(params)));
    assert.equal(gone.status, 401);
    assert.deepEqual(errorOf(gone.body), errorOf(unknown.body), 'a revoked key is told nothing an unknown key is not');
    assert.ok(!gone.body.includes(issued.secret));
  });

  test('rotation: the new secret works, the old one is refused, the key id (and so the tenant) stays', async () => {
    const team = await admin().createTeam('rotate-team');
    const issued = await admin().createKey(team.id);
    await eventually(async () => !(await refusedWith401(issued.secret)), 5_000, 'the key to be accepted');
    const rotated = await admin().call('POST', `/admin/keys/${issued.key.id}/rotate`);
    assert.equal(rotated.status, 200);
    assert.equal(rotated.body.key.id, issued.key.id);
    assert.notEqual(rotated.body.secret, issued.secret);
    await eventually(() => refusedWith401(issued.secret), 5_000, 'the old secret to be refused');
    assert.equal((await sdk(rotated.body.secret).messages.create(params)).type, 'message');
  });

  test('an expired key is refused at once (no poll needed); a key limited to some models gets 403 permission_error for others, nothing sent upstream', async () => {
    const team = await admin().createTeam('limits-team');
    const expired = await admin().createKey(team.id, { expires_at: '2020-01-01' });
    const limited = await admin().createKey(team.id, { limits: { models: ['claude-haiku-*'] } });
    await eventually(async () => {
      try {
        await sdk(limited.secret).messages.create({ ...params, model: 'claude-haiku-5' });
        return true;
      } catch {
        return false;
      }
    }, 5_000, 'the limited key to be accepted for its model');
    assert.ok(await refusedWith401(expired.secret), 'expired');

    const before = stack.mock.requests.length;
    await assert.rejects(sdk(limited.secret).messages.create(params), (err: unknown) => {
      assert.ok(err instanceof Anthropic.PermissionDeniedError, String(err));
      return true;
    });
    const raw = await rawExchange(stack.gateway.url, rawRequest('POST', '/v1/messages', { 'content-type': 'application/json', 'x-api-key': limited.secret }, JSON.stringify(params)));
    assert.equal(raw.status, 403);
    assert.equal(errorOf(raw.body).type, 'permission_error');
    assert.equal(stack.mock.requests.length, before, 'refused before upstream');
  });

  test('no key secret reaches the logs, the metrics, or an error message', async () => {
    const team = await admin().createTeam('secret-team');
    const issued = await admin().createKey(team.id);
    await eventually(async () => !(await refusedWith401(issued.secret)), 5_000, 'the key to be accepted');
    await sdk(issued.secret).messages.create(params);
    await admin().call('POST', `/admin/keys/${issued.key.id}/revoke`);
    await eventually(() => refusedWith401(issued.secret), 5_000, 'the revoked key to be refused');
    const metrics = await (await fetch(`${stack.gateway.url}/metrics`)).text();
    const listed = (await admin().call('GET', '/admin/keys')).text;
    const random = issued.secret.slice(10);
    for (const [where, text] of [['logs', stack.logs.text()], ['metrics', metrics], ['key listing', listed]] as const) {
      assert.ok(!text.includes(random), `the secret appears in the ${where}`);
    }
    assert.match(metrics, /^governance_keys_cached \d+$/m);
  });
});

describe('database keys on a pass-through gateway (clients bring their Anthropic key)', () => {
  const stack = stackForSuite({ env: { ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GOVERNANCE_POLL_MS: '100' } });

  test('with ADMIN_API_KEY every request needs a gateway key (x-gateway-api-key), though GATEWAY_API_KEYS is unset; the client key travels', async () => {
    const admin = adminClient((stack.gateway.admin as { url: string }).url, ADMIN_KEY);
    const team = await admin.createTeam('pass-through');
    const issued = await admin.createKey(team.id);
    const before = stack.mock.requests.length;
    await assert.rejects(stack.client().messages.create(params), (err: unknown) => err instanceof Anthropic.AuthenticationError);
    assert.equal(stack.mock.requests.length, before, 'refused at the edge, not by upstream');
    const withKey = stack.client({ defaultHeaders: { 'x-gateway-api-key': issued.secret } });
    await eventually(async () => {
      try {
        await withKey.messages.create(params);
        return true;
      } catch {
        return false;
      }
    }, 5_000, 'the database key to be accepted');
    const last = stack.mock.requests.at(-1);
    assert.ok(last !== undefined && !JSON.stringify(last.headers).includes(issued.secret), 'the gateway key never travels upstream');
  });
});

describe('the admin API refuses what it must', () => {
  const stack = stackForSuite({ env: { ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GATEWAY_API_KEYS: STATIC_KEY } });
  const url = () => (stack.gateway.admin as { url: string }).url;
  const as = (credential: string) => adminClient(url(), credential);

  test('no credential, a wrong one, or a gateway key (static or database): 401 authentication_error; the admin API is not on the gateway port', async () => {
    const noAuth = await fetch(`${url()}/admin/teams`);
    assert.equal(noAuth.status, 401);
    assert.equal(errorOf(await noAuth.text()).type, 'authentication_error');
    assert.equal((await as(STATIC_KEY).call('GET', '/admin/teams')).status, 401);
    assert.equal((await as(`${ADMIN_KEY}x`).call('GET', '/admin/teams')).status, 401);
    const team = await as(ADMIN_KEY).createTeam('admin-auth');
    const issued = await as(ADMIN_KEY).createKey(team.id);
    assert.equal((await as(issued.secret).call('GET', '/admin/teams')).status, 401);
    const basic = await fetch(`${url()}/admin/teams`, { headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN_KEY}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    const onGateway = await fetch(`${stack.gateway.url}/admin/teams`, { headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-gateway-api-key': STATIC_KEY } });
    assert.notEqual(onGateway.status, 200, 'the client listener serves no admin route');
  });

  test('malformed JSON, unknown fields, negative budgets, bad periods: 400 invalid_request_error naming the field; nothing stored', async () => {
    const a = as(ADMIN_KEY);
    const cases: [unknown, RegExp][] = [
      ['{"name": "x"', /not valid JSON/],
      [{ name: 'x', colour: 'red' }, /colour/],
      [{ name: 'x', budgets: [{ period: 'day', usd: -1 }] }, /budgets\.0\.usd/],
      [{ name: 'x', budgets: [{ period: 'fortnight', usd: 1 }] }, /budgets\.0\.period/],
      [{ name: 'x', budgets: [{ period: 'day', usd: 1, extra: true }] }, /extra/],
      [{ name: 'x', budgets: [{ period: 'day' }] }, /budgets: each budget needs usd or tokens/],
      [{ name: '' }, /name/],
      [{ name: 42 }, /name/],
      [[], /expected object/],
    ];
    for (const [body, message] of cases) {
      const answer = await a.call('POST', '/admin/teams', body);
      assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${answer.text}`);
      assert.equal(answer.body.error.type, 'invalid_request_error');
      assert.match(answer.body.error.message, message, JSON.stringify(body));
    }
    const key = await a.call('POST', '/admin/keys', { team_id: 'team_x', limits: { requests_per_minute: -5 } });
    assert.equal(key.status, 400);
    assert.match(key.body.error.message, /limits\.requests_per_minute/);
    const missing = await a.call('POST', '/admin/keys', { team_id: 'team_nope' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /team_id/);
    assert.equal((await a.call('GET', '/admin/spend?groupBy=colour')).status, 400);
    assert.deepEqual((await a.call('GET', '/admin/teams')).body.data.filter((t) => t.name === 'x'), [], 'nothing stored');
  });

  test('a team name with SQL metacharacters is stored and listed verbatim', async () => {
    const a = as(ADMIN_KEY);
    const name = `Robert'); DROP TABLE teams;-- "q" \\ %_ $1`;
    const created = await a.call('POST', '/admin/teams', { name });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.name, name);
    const listed = (await a.call('GET', '/admin/teams')).body.data;
    assert.ok(listed.some((t) => t.name === name));
    assert.equal((await a.call('POST', '/admin/teams', { name })).status, 409, 'names are unique');
  });

  test('a huge body is refused (413) without being read whole', async () => {
    const huge = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
    const answer = await rawExchange(url(), rawRequest('POST', '/admin/teams', { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, huge));
    assert.equal(answer.status, 413);
    assert.equal(errorOf(answer.body).type, 'request_too_large');
    const chunked = await a413Chunked(url());
    assert.equal(chunked, 413);
  });
});

/** A body without content-length (chunked) that grows past the bound: still 413. */
async function a413Chunked(url: string): Promise<number> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(`${url}/admin/teams`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    const chunk = 'x'.repeat(64 * 1024);
    req.write('{"name":"');
    for (let i = 0; i < 4; i++) req.write(chunk);
    req.end('"}');
  });
}
