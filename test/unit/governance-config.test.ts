import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { problemsOf } from '../helpers/config-problems.js';

const ADMIN = 'admin-secret-0123456789abcdef-0123456789';

describe('governance configuration (ADMIN_API_KEY, DATABASE_URL, ...)', () => {
  test('off by default; ADMIN_API_KEY turns it on with loopback, port 8081, PGlite in data/governance, a 1 s poll', () => {
    assert.equal(loadConfig({}).governance, undefined);
    assert.deepEqual(loadConfig({ ADMIN_API_KEY: ADMIN }).governance, {
      adminApiKey: ADMIN, viewerKey: undefined, adminHost: '127.0.0.1', adminPort: 8081, databaseUrl: undefined, dataDir: 'data/governance', pollMs: 1000,
    });
    assert.equal(loadConfig({ ADMIN_API_KEY: ADMIN, DATABASE_URL: 'postgresql://gw:pw@db:5432/gw' }).governance?.databaseUrl, 'postgresql://gw:pw@db:5432/gw');
  });

  test('refused at start-up, naming the variable and never echoing a secret', () => {
    const short = problemsOf({ ADMIN_API_KEY: 'too-short-admin-key' }).join('\n');
    assert.match(short, /ADMIN_API_KEY must be at least 32 characters/);
    assert.ok(!short.includes('too-short-admin-key'));

    const shared = problemsOf({ ADMIN_API_KEY: ADMIN, GATEWAY_API_KEYS: `gw-key-aaaaaaaaaaaaaaaa,${ADMIN}` }).join('\n');
    assert.match(shared, /ADMIN_API_KEY equals a GATEWAY_API_KEYS entry/);
    assert.ok(!shared.includes(ADMIN));

    assert.match(problemsOf({ ADMIN_API_KEY: ADMIN, PORT: '9000', ADMIN_PORT: '9000' }).join(), /ADMIN_PORT equals PORT/);
    assert.match(problemsOf({ ADMIN_API_KEY: ADMIN, ADMIN_PORT: '8080' }).join(), /ADMIN_PORT equals PORT/, 'the defaults count too');

    const viewerAlone = problemsOf({ ADMIN_VIEWER_KEY: `viewer-${ADMIN}` }).join('\n');
    assert.match(viewerAlone, /ADMIN_VIEWER_KEY is set but ADMIN_API_KEY is not/);
    const viewerIsAdmin = problemsOf({ ADMIN_API_KEY: ADMIN, ADMIN_VIEWER_KEY: ADMIN }).join('\n');
    assert.match(viewerIsAdmin, /ADMIN_VIEWER_KEY equals ADMIN_API_KEY/);
    assert.ok(!viewerIsAdmin.includes(ADMIN));

    const notPostgres = problemsOf({ ADMIN_API_KEY: ADMIN, DATABASE_URL: 'mysql://u:hunter2@db/x' }).join('\n');
    assert.match(notPostgres, /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
    assert.ok(!notPostgres.includes('hunter2'));

    assert.match(problemsOf({ GOVERNANCE_POLL_MS: '6000' }).join(), /GOVERNANCE_POLL_MS must be a whole number from 100 to 5000/);
    assert.match(problemsOf({ ADMIN_API_KEY: ADMIN, WORKERS: '2' }).join(), /WORKERS > 1 needs DATABASE_URL/);
  });

  test('an injected upstream key with ADMIN_API_KEY is not an open gateway (every request needs a key)', () => {
    assert.equal(loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-x', ADMIN_API_KEY: ADMIN }).injectsCredentials, true);
  });
});
