import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { classifyRequest, upstreamPath, type ClassifySettings } from '../../src/http/request-class.js';

const JSON_POST = { 'content-type': 'application/json', 'content-length': '20' };
const on: ClassifySettings = { basePath: '', coalesce: true, cache: true };

function request(method: string, url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, url, headers } as unknown as IncomingMessage;
}

describe('classifyRequest (pure: the request line, headers, tenant and settings decide everything)', () => {
  test('a JSON message creation with a tenant may coalesce and be cached', () => {
    const c = classifyRequest(request('POST', '/v1/messages', JSON_POST), { tenant: 't:1' }, on);
    assert.deepEqual(c, { method: 'POST', path: '/v1/messages', viaBasePath: false, endpoint: 'messages', withBody: true, jsonBody: true, coalescing: true, caching: true });
  });

  test('no tenant (no upstream credential): shares nothing', () => {
    const c = classifyRequest(request('POST', '/v1/messages', JSON_POST), { tenant: undefined }, on);
    assert.equal(c.coalescing, false);
    assert.equal(c.caching, false);
  });

  test('a body that is not JSON streams through and shares nothing', () => {
    const c = classifyRequest(request('POST', '/v1/messages', { 'content-type': 'multipart/form-data', 'content-length': '9' }), { tenant: 't:1' }, on);
    assert.equal(c.withBody, true);
    assert.equal(c.jsonBody, false);
    assert.equal(c.coalescing, false);
    assert.equal(c.caching, false);
  });

  test('batches and other mutations are never shared; model reads are', () => {
    assert.equal(classifyRequest(request('POST', '/v1/messages/batches', JSON_POST), { tenant: 't:1' }, on).coalescing, false);
    assert.equal(classifyRequest(request('DELETE', '/v1/files/f1'), { tenant: 't:1' }, on).coalescing, false);
    const models = classifyRequest(request('GET', '/v1/models'), { tenant: 't:1' }, on);
    assert.equal(models.withBody, false);
    assert.equal(models.coalescing, true);
  });

  test('each opt-out header and each setting turns off only its own tier', () => {
    const noCoalesce = classifyRequest(request('POST', '/v1/messages', { ...JSON_POST, 'x-gateway-coalesce': 'off' }), { tenant: 't:1' }, on);
    assert.deepEqual([noCoalesce.coalescing, noCoalesce.caching], [false, true]);
    const noCache = classifyRequest(request('POST', '/v1/messages', { ...JSON_POST, 'x-gateway-cache': ' OFF ' }), { tenant: 't:1' }, on);
    assert.deepEqual([noCache.coalescing, noCache.caching], [true, false]);
    const off = classifyRequest(request('POST', '/v1/messages', JSON_POST), { tenant: 't:1' }, { basePath: '', coalesce: false, cache: false });
    assert.deepEqual([off.coalescing, off.caching], [false, false]);
  });

  test('BASE_PATH is stripped only on a segment boundary', () => {
    const c = classifyRequest(request('POST', '/gw/v1/messages?beta=true', JSON_POST), { tenant: 't:1' }, { ...on, basePath: '/gw' });
    assert.equal(c.path, '/v1/messages?beta=true');
    assert.equal(c.viaBasePath, true);
    assert.equal(c.coalescing, true);
    assert.deepEqual(upstreamPath('/gwx/v1/messages', '/gw'), { path: '/gwx/v1/messages', viaBasePath: false });
    assert.deepEqual(upstreamPath('/gw', '/gw'), { path: '/', viaBasePath: true });
    assert.deepEqual(upstreamPath('/gw?x=1', '/gw'), { path: '/?x=1', viaBasePath: true });
  });
});
