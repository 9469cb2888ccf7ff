import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminClient, type AdminBody } from '../helpers/admin-api.js';
import { stackForSuite } from '../helpers/stack.js';

/**
 * The admin API's OpenAPI document (GET /admin/openapi.json) is generated from the route table and
 * its zod schemas; this test holds every route to it: each answers with a status the document lists
 * for that operation, with every field the document's schema for that status requires (and, for
 * lists, every field each item requires), including 400 and 401.
 */

const ADMIN_KEY = 'admin-key-openapi-0123456789abcdef-01234';

interface Schema {
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
}
interface Operation {
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: unknown;
  responses: Record<string, { content: { 'application/json': { schema: Schema } } }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

/** Fields the schema requires that `value` lacks, recursively through objects and arrays (paths named). */
function missing(schema: Schema, value: unknown, at = ''): string[] {
  if (schema.type === 'array' && schema.items !== undefined) {
    if (!Array.isArray(value)) return [`${at || 'body'} is not an array`];
    return value.flatMap((item, i) => missing(schema.items as Schema, item, `${at}[${i}]`));
  }
  if (schema.type !== 'object' || typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const field of schema.required ?? []) {
    if (!(field in value)) out.push(`${at}.${field}`);
    else if (schema.properties?.[field] !== undefined) out.push(...missing(schema.properties[field], (value as Record<string, unknown>)[field], `${at}.${field}`));
  }
  return out;
}

describe('the admin API answers as its OpenAPI document says', () => {
  const stack = stackForSuite({ env: { ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GATEWAY_API_KEYS: 'gw-static-key-0123456789abcdef' } });

  test('every operation: a valid call, a call without credential, and (with a body or query) an invalid one', async () => {
    const admin = adminClient((stack.gateway.admin as { url: string }).url, ADMIN_KEY);
    const doc = (await admin.call('GET', '/admin/openapi.json')).body as unknown as Document;
    assert.equal(doc.openapi, '3.1.0');
    const team = await admin.createTeam('openapi-team');
    const key = await admin.createKey(team.id);
    /** A valid body (or query) per operation; ids of the resources made above. */
    const fixtures: Record<string, { path?: string; body?: unknown; query?: string }> = {
      'post /admin/teams': { body: { name: 'documented', budgets: [{ period: 'day', usd: 2.5 }], metadata: { owner: 'ops' } } },
      'patch /admin/teams/{id}': { path: `/admin/teams/${team.id}`, body: { budgets: [{ period: 'month', tokens: 1000 }] } },
      'post /admin/keys': { body: { team_id: team.id, name: 'doc', limits: { models: ['claude-*'], max_concurrent: 2 }, expires_at: '2030-01-01' } },
      'get /admin/keys/{id}': { path: `/admin/keys/${key.key.id}` },
      'patch /admin/keys/{id}': { path: `/admin/keys/${key.key.id}`, body: { user_id: 'bob', expires_at: null } },
      'post /admin/keys/{id}/rotate': { path: `/admin/keys/${key.key.id}/rotate` },
      'post /admin/keys/{id}/revoke': { path: `/admin/keys/${key.key.id}/revoke` },
      'get /admin/spend': { query: '?groupBy=team&from=2026-01-01' },
    };
    let operations = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        operations++;
        const fixture = fixtures[`${method} ${path}`] ?? {};
        const target = (fixture.path ?? path) + (fixture.query ?? '');
        const check = (what: string, status: number, body: AdminBody): void => {
          const documented = operation.responses[String(status)];
          assert.ok(documented !== undefined, `${method.toUpperCase()} ${path} (${what}) answered ${status}, not in its document (${Object.keys(operation.responses).join(', ')})`);
          assert.deepEqual(missing(documented.content['application/json'].schema, body), [], `${method.toUpperCase()} ${path} (${what}) ${status}: required fields`);
        };
        const valid = await admin.call(method.toUpperCase(), target, fixture.body);
        assert.ok(valid.status < 300, `${method} ${path}: ${valid.status} ${valid.text}`);
        check('valid', valid.status, valid.body);
        const anonymous = await adminClient((stack.gateway.admin as { url: string }).url, 'not-the-admin-key').call(method.toUpperCase(), target, fixture.body);
        check('no credential', anonymous.status, anonymous.body);
        if (operation.requestBody !== undefined) {
          const bad = await admin.call(method.toUpperCase(), target, { unexpected_field: true });
          assert.equal(bad.status, 400);
          check('unknown field', bad.status, bad.body);
        }
        if (operation.parameters?.some((p) => p.in === 'query') === true) {
          const bad = await admin.call(method.toUpperCase(), `${fixture.path ?? path}?groupBy=nonsense`);
          assert.equal(bad.status, 400);
          check('bad query', bad.status, bad.body);
        }
        if (path.includes('{id}')) {
          const none = await admin.call(method.toUpperCase(), path.replace('{id}', 'no_such_id'), fixture.body);
          check('unknown id', none.status, none.body);
        }
      }
    }
    assert.equal(operations, 11, 'every route of the table plus the document itself');
  });
});
