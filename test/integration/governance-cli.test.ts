import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runAdminCli } from '../../src/cli.js';
import { stackForSuite } from '../helpers/stack.js';

/** `claude-gateway keys|teams|spend ...` against a real gateway's admin API. */

const ADMIN_KEY = 'admin-key-cli-0123456789abcdef-0123456789';

describe('the admin command line', () => {
  const stack = stackForSuite({ env: { ADMIN_API_KEY: ADMIN_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GATEWAY_API_KEYS: 'gw-static-key-0123456789abcdef' } });
  const env = () => ({ ADMIN_URL: (stack.gateway.admin as { url: string }).url, ADMIN_API_KEY: ADMIN_KEY });
  const run = (...argv: string[]) => runAdminCli(argv, env());

  test('teams create, keys create (team by name, budget, models, expiry), list, rotate, revoke, spend', async () => {
    const team = await run('teams', 'create', 'platform', '--budget-usd', '25.5', '--period', 'week', '--json');
    assert.equal(team.code, 0, team.stderr);
    const teamBody = JSON.parse(team.stdout) as { id: string; budgets: unknown };
    assert.deepEqual(teamBody.budgets, [{ period: 'week', usd: 25.5 }]);

    const created = await run('keys', 'create', '--team', 'platform', '--name', 'ci', '--user', 'alice', '--budget-usd', '10', '--period', 'day', '--models', 'claude-sonnet-*,claude-haiku-5', '--expires', '2027-01-01', '--json');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /shown this once/);
    const key = JSON.parse(created.stdout) as { key: { id: string; team_id: string; limits: unknown; budgets: unknown; expires_at: string }; secret: string };
    assert.equal(key.key.team_id, teamBody.id);
    assert.deepEqual(key.key.limits, { models: ['claude-sonnet-*', 'claude-haiku-5'] });
    assert.deepEqual(key.key.budgets, [{ period: 'day', usd: 10 }]);
    assert.equal(key.key.expires_at, '2027-01-01T00:00:00.000Z');
    assert.match(key.secret, /^cgw_/);

    const listed = await run('keys', 'list', '--team', 'platform');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^id\s+name\s+prefix\s+team_id/);
    assert.ok(listed.stdout.includes(key.key.id));
    assert.ok(!listed.stdout.includes(key.secret.slice(10)), 'a listing never shows a secret');

    const rotated = await run('keys', 'rotate', key.key.id);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.ok(rotated.stdout.includes('cgw_') && !rotated.stdout.includes(key.secret));
    const revoked = await run('keys', 'revoke', key.key.id, '--json');
    assert.notEqual((JSON.parse(revoked.stdout) as { revoked_at: string | null }).revoked_at, null);

    const spend = await run('spend', '--group-by', 'team');
    assert.equal(spend.code, 0, spend.stderr);
    assert.match(spend.stdout, /^group\s+requests\s+cost_usd/);
  });

  test('mistakes: a usage error (2), a refusal of the API with its message (1), a wrong admin key (1), no admin key (2)', async () => {
    assert.equal((await run('keys')).code, 2);
    assert.equal((await run('keys', 'create', '--colour', 'red')).code, 2);
    const noTeam = await run('keys', 'create', '--team', 'nobody');
    assert.equal(noTeam.code, 1);
    assert.match(noTeam.stderr, /no team has the id or name "nobody"/);
    const negative = await run('teams', 'create', 'neg', '--budget-usd=-3');
    assert.equal(negative.code, 1);
    assert.match(negative.stderr, /400: budgets\.0\.usd/);
    const wrong = await runAdminCli(['teams', 'list'], { ...env(), ADMIN_API_KEY: 'not-the-admin-key-0123456789abcdef-000' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401/);
    assert.equal((await runAdminCli(['teams', 'list'], { ADMIN_URL: env().ADMIN_URL })).code, 2);
  });
});
