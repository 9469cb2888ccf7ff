import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, isSecretVariable, printConfig, redact, runCli } from '../../src/cli.js';
import { configVariables, loadConfig } from '../../src/config.js';

const VERSION = '9.8.7';

describe('operator CLI', () => {
  test('every configuration variable has a one-line description', () => {
    const variables = configVariables();
    assert.ok(variables.length >= 40);
    for (const v of variables) {
      assert.ok(v.description.trim().length >= 10, `${v.name} needs .describe('...') in src/config.ts`);
      assert.ok(!v.description.includes('\n'), `${v.name}: one line`);
    }
  });

  test('each listed default is the value the configuration really uses', () => {
    const defaults = loadConfig({});
    for (const v of configVariables()) {
      if (v.defaultValue === undefined) continue;
      assert.deepEqual(loadConfig({ [v.name]: v.defaultValue }), defaults, `${v.name}=${v.defaultValue} is not its default`);
    }
  });

  test('--help lists every variable with its default and meaning', () => {
    const outcome = runCli(['--help'], {}, VERSION);
    assert.ok(outcome.kind === 'exit');
    assert.equal(outcome.code, 0);
    assert.equal(outcome.stdout, helpText(VERSION));
    for (const v of configVariables()) {
      const shown = v.defaultValue === undefined ? 'unset' : v.defaultValue === '' ? "''" : v.defaultValue;
      assert.ok(outcome.stdout.includes(`  ${v.name}  [default: ${shown}]`), `${v.name} in --help`);
      const firstWords = v.description.split(/\s+/).slice(0, 3).join(' ');
      assert.ok(outcome.stdout.replace(/\s+/g, ' ').includes(firstWords), `${v.name}'s description in --help`);
    }
    assert.deepEqual(runCli(['-h'], {}, VERSION), outcome);
  });

  test('--version prints the version', () => {
    assert.deepEqual(runCli(['--version'], {}, VERSION), { kind: 'exit', code: 0, stdout: `claude-gateway ${VERSION}\n`, stderr: '' });
  });

  test('no option starts the gateway; an unknown option or a second one exits 2', () => {
    assert.deepEqual(runCli([], {}, VERSION), { kind: 'start' });
    const unknown = runCli(['--start-now'], {}, VERSION);
    assert.ok(unknown.kind === 'exit' && unknown.code === 2 && unknown.stderr.includes('--start-now'));
    const two = runCli(['--help', '--version'], {}, VERSION);
    assert.ok(two.kind === 'exit' && two.code === 2);
  });

  test('--print-config shows effective values and never a secret', () => {
    const env = {
      PORT: ' 9090 ',
      ANTHROPIC_API_KEY: 'sk-ant-api03-supersecret-value',
      GATEWAY_API_KEYS: 'gw-key-aaaaaaaaaaaaaaaa,gw-key-bbbbbbbbbbbbbbbb',
      ALLOW_OPEN_GATEWAY: 'false',
      REDIS_URL: 'redis://gateway:redis-pass-1234@redis.internal:6379/0',
      TENANT_HASH_KEY: 'tenant-hash-secret-0123456789abcdef',
      COALESCE: '',
    };
    const outcome = runCli(['--print-config'], env, VERSION);
    assert.ok(outcome.kind === 'exit');
    assert.equal(outcome.code, 0, outcome.stderr);
    const text = outcome.stdout;
    for (const secret of ['supersecret', 'gw-key-aaaa', 'gw-key-bbbb', 'redis-pass-1234', 'tenant-hash-secret']) assert.ok(!text.includes(secret), `${secret} leaked`);
    assert.match(text, /^PORT=9090 {2}# environment$/m);
    assert.match(text, /^ANTHROPIC_API_KEY=<redacted> {2}# environment$/m);
    assert.match(text, /^GATEWAY_API_KEYS=<redacted> {2}# environment$/m);
    assert.match(text, /^REDIS_URL=redis:\/\/gateway:<redacted>@redis\.internal:6379\/0 {2}# environment$/m);
    assert.match(text, /^COALESCE=true {2}# default$/m, 'empty counts as unset');
    assert.match(text, /^# PUBLIC_URL unset$/m);
    for (const v of configVariables()) assert.ok(text.includes(v.name), `${v.name} in --print-config`);
  });

  test('secrets are recognised by name, so variables added later are redacted too', () => {
    for (const name of ['TENANT_HASH_KEY', 'ANTHROPIC_API_KEY', 'GATEWAY_API_KEYS', 'REDIS_PASSWORD', 'OTEL_TOKEN', 'WEBHOOK_SECRET']) {
      assert.ok(isSecretVariable(name), name);
    }
    for (const name of ['PORT', 'MAX_MODES', 'CACHE_MAX_BYTES', 'KEEP_ALIVE_TIMEOUT_MS', 'BREAKER']) assert.ok(!isSecretVariable(name), name);
    const text = printConfig({ TENANT_HASH_KEY: 'hash-key-value-0000-0000-0000-0000', ADMIN_PASSWORD: 'pw-0000' }, VERSION, [
      { name: 'TENANT_HASH_KEY', description: 'keyed hash of tenants', defaultValue: undefined },
      { name: 'ADMIN_PASSWORD', description: 'a password', defaultValue: undefined },
    ]);
    assert.ok(!text.includes('hash-key-value-0000') && !text.includes('pw-0000'));
    assert.match(text, /^TENANT_HASH_KEY=<redacted>/m);
    assert.equal(redact('OTHER_URL', 'https://user:pw@host/x'), 'https://user:<redacted>@host/x');
    assert.equal(redact('OTHER_URL', 'https://host/x'), 'https://host/x');
  });

  test('the configuration table marks its secrets: every variable the name rule matches is marked, and a marked one is redacted whatever its name', () => {
    const variables = configVariables();
    assert.deepEqual(variables.filter((v) => isSecretVariable(v.name) && v.secret !== true).map((v) => v.name), [], 'secret by name but not marked in the table');
    assert.deepEqual(variables.filter((v) => v.secret === true).map((v) => v.name), ['GATEWAY_API_KEYS', 'ANTHROPIC_API_KEY', 'TENANT_HASH_KEY', 'ADMIN_API_KEY', 'ADMIN_VIEWER_KEY', 'DATABASE_URL']);
    const text = printConfig({ SIGNING_MATERIAL: 'material-0000' }, VERSION, [{ name: 'SIGNING_MATERIAL', description: 'marked secret in the table', defaultValue: undefined, secret: true }]);
    assert.ok(!text.includes('material-0000'));
    assert.match(text, /^SIGNING_MATERIAL=<redacted> {2}# environment$/m);
    assert.match(helpText(VERSION, [{ name: 'SIGNING_MATERIAL', description: 'marked secret in the table', defaultValue: undefined, secret: true }]), /SIGNING_MATERIAL {2}\[default: unset\] {2}\(secret: never printed\)/);
  });

  test('--print-config on a bad configuration exits 1 naming the variable, echoing no value', () => {
    const outcome = runCli(['--print-config'], { PORT: 'eighty', ANTHROPIC_API_KEY: 'sk-ant-secret-but-open' }, VERSION);
    assert.ok(outcome.kind === 'exit');
    assert.equal(outcome.code, 1);
    assert.equal(outcome.stdout, '');
    assert.match(outcome.stderr, /PORT must be a whole number/);
    assert.ok(!outcome.stderr.includes('eighty') && !outcome.stderr.includes('sk-ant-secret-but-open'));
  });
});
