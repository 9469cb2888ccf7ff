import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { problemsOf } from '../helpers/config-problems.js';

describe('configuration', () => {
  test('defaults match the documented contract', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.upstreamOrigin, 'https://api.anthropic.com');
    assert.equal(c.upstreamPathPrefix, '');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.maxBodyBytes, 32 * 1024 * 1024);
    assert.equal(c.upstreamHeadersTimeoutMs, 600_000);
    assert.equal(c.gatewayApiKeys, undefined);
    assert.ok(Object.isFrozen(c));
  });

  test('each bad value is reported with its variable name and accepted values', () => {
    const problems = problemsOf({ PORT: 'abc', LOG_LEVEL: 'loud', UPSTREAM_URL: 'ftp://x', MAX_BODY_BYTES: '-1' });
    assert.equal(problems.length, 4);
    assert.match(problems.join('\n'), /PORT must be a whole number from 0 to 65535/);
    assert.match(problems.join('\n'), /LOG_LEVEL must be one of fatal\|error\|warn\|info\|debug\|trace\|silent/);
    assert.match(problems.join('\n'), /UPSTREAM_URL must be an absolute http\(s\) URL/);
    assert.match(problems.join('\n'), /MAX_BODY_BYTES must be a whole number/);
  });

  test('upstream pool: by default every admitted request can be live upstream (HTTP/1.1: one connection each; HTTP/2: 100 streams each)', () => {
    const h1 = loadConfig({});
    assert.equal(h1.upstreamConnections, h1.maxConcurrentRequests);
    assert.equal(loadConfig({ MAX_CONCURRENT_REQUESTS: '2000' }).upstreamConnections, 2000);
    assert.equal(h1.upstreamHttp2, false);
    assert.equal(h1.upstreamPoolWaitMs, 5_000);
    const h2 = loadConfig({ UPSTREAM_HTTP2: 'on' });
    assert.equal(h2.upstreamConnections, 100);
    assert.equal(h2.upstreamHttp2MaxStreams, 100);
    assert.equal(loadConfig({ UPSTREAM_HTTP2: 'on', UPSTREAM_CONNECTIONS: '3' }).upstreamConnections, 3);
    assert.match(problemsOf({ UPSTREAM_POOL_WAIT_MS: '0' }).join(), /UPSTREAM_POOL_WAIT_MS must be a whole number/);
    assert.match(problemsOf({ UPSTREAM_HTTP2: 'maybe' }).join(), /UPSTREAM_HTTP2 must be one of/);
    assert.match(problemsOf({ UPSTREAM_CA_FILE: '/nonexistent/ca.pem' }).join(), /UPSTREAM_CA_FILE cannot be read/);
  });

  test('out-of-range numbers are refused', () => {
    assert.match(problemsOf({ PORT: '70000' }).join(), /PORT/);
    assert.match(problemsOf({ UPSTREAM_CONNECTIONS: '0' }).join(), /UPSTREAM_CONNECTIONS/);
  });

  test('empty strings count as unset', () => {
    assert.equal(loadConfig({ PORT: '', LOG_LEVEL: '  ' }).port, 8080);
  });

  test('an injected upstream key requires gateway keys unless running open is explicit', () => {
    const problems = problemsOf({ ANTHROPIC_API_KEY: 'sk-ant-secret-value-123' });
    assert.match(problems.join(), /GATEWAY_API_KEYS/);
    assert.ok(!problems.join().includes('sk-ant-secret-value-123'), 'the secret must not be echoed');
    assert.equal(loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-x', ALLOW_OPEN_GATEWAY: 'true' }).allowOpenGateway, true);
    const c = loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-x', GATEWAY_API_KEYS: 'gw-key-aaaaaaaaaaaaaaaa, gw-key-bbbbbbbbbbbbbbbb' });
    assert.deepEqual(c.gatewayApiKeys, ['gw-key-aaaaaaaaaaaaaaaa', 'gw-key-bbbbbbbbbbbbbbbb']);
  });

  test('bad values never echo secrets', () => {
    const problems = problemsOf({ GATEWAY_API_KEYS: 'short-secret' });
    assert.match(problems.join(), /GATEWAY_API_KEYS: every key must be at least 16 characters/);
    assert.ok(!problems.join().includes('short-secret'));
  });

  test('UPSTREAM_URL may carry a path prefix; BASE_PATH must be a clean path', () => {
    const c = loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:9000/anthropic/' });
    assert.equal(c.upstreamOrigin, 'http://127.0.0.1:9000');
    assert.equal(c.upstreamPathPrefix, '/anthropic');
    assert.equal(c.upstreamBaseUrl, 'http://127.0.0.1:9000/anthropic');
    assert.match(problemsOf({ BASE_PATH: 'anthropic/' }).join(), /BASE_PATH/);
    assert.equal(loadConfig({ BASE_PATH: '/anthropic' }).basePath, '/anthropic');
  });

  test('booleans accept the usual spellings only', () => {
    assert.equal(loadConfig({ ALLOW_OPEN_GATEWAY: 'on' }).allowOpenGateway, true);
    assert.match(problemsOf({ ALLOW_OPEN_GATEWAY: 'maybe' }).join(), /ALLOW_OPEN_GATEWAY must be one of/);
  });
});
