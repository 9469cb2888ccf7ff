import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deferred } from '../helpers/deferred.js';
import { REPO_ROOT } from '../helpers/k6.js';
import { launchGateway } from '../helpers/stack.js';
import { createMockUpstream } from '../../tools/mock-upstream/index.js';

/**
 * README's "Using it" examples, verbatim but for the address, against the demo (`npm run demo`
 * runs dist/tools/demo/main.js), with no ANTHROPIC_API_KEY in the environment: both must succeed.
 */

const run = promisify(execFile);
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const DOCUMENTED_URL = 'http://127.0.0.1:8080';

function section(name: string): string {
  const start = README.indexOf(`## ${name}\n`);
  assert.ok(start >= 0, `README has "## ${name}"`);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

function block(text: string, lang: string, containing: string): string {
  for (const match of text.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    if (match[1] === lang && match[2]?.includes(containing) === true) return match[2];
  }
  assert.fail(`no \`\`\`${lang} block containing ${containing}`);
}

/** The environment of someone with no key: ANTHROPIC_* removed. */
function keyless(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ANTHROPIC_')) env[k] = v;
  return env;
}

test("README's curl and SDK examples work against the demo with no API key set", { timeout: 60_000 }, async () => {
  const demo = spawn(process.execPath, [join(REPO_ROOT, 'dist/tools/demo/main.js')], {
    env: { ...keyless(), PORT: '0', MOCK_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = deferred<string>();
  let banner = '';
  demo.stdout.on('data', (c: Buffer) => {
    banner += c.toString('utf8');
    const match = /gateway (http:\/\/[\d.:]+)\s/.exec(banner);
    if (match?.[1] !== undefined) url.resolve(match[1]);
  });
  demo.once('exit', (code) => url.reject(new Error(`demo exited ${String(code)}`)));
  const timer = setTimeout(() => url.reject(new Error('the demo printed no banner within 20 s')), 20_000);
  const snippet = join(REPO_ROOT, 'dist', `readme-snippet-${process.pid}.mjs`);
  try {
    const gateway = await url.promise;
    assert.match(banner, /demo-key/, 'the banner names the key the demo accepts');
    const using = section('Using it');

    const curl = block(using, 'sh', `curl -s ${DOCUMENTED_URL}/v1/messages`).replaceAll(DOCUMENTED_URL, gateway);
    const { stdout } = await run('/bin/sh', ['-c', curl], { env: keyless(), timeout: 15_000 });
    const answer = JSON.parse(stdout) as { type?: string; content?: unknown[] };
    assert.equal(answer.type, 'message', stdout);

    const ts = block(using, 'ts', `baseURL: '${DOCUMENTED_URL}'`).replaceAll(DOCUMENTED_URL, gateway);
    // Plain JavaScript as written (no type annotations); the file sits in dist/ so node_modules resolves.
    writeFileSync(snippet, `${ts}\nconsole.log(JSON.stringify({ message: message.type, streamed: streamed.type }));\n`);
    const sdk = await run(process.execPath, [snippet], { env: keyless(), timeout: 15_000 });
    assert.deepEqual(JSON.parse(sdk.stdout), { message: 'message', streamed: 'message' });
  } finally {
    clearTimeout(timer);
    rmSync(snippet, { force: true });
    if (demo.exitCode === null) {
      demo.kill('SIGTERM');
      await once(demo, 'exit');
    }
  }
});

test('README "Failover" example configuration is accepted as written (the exports, with placeholder secrets)', async () => {
  const { loadConfig } = await import('../../src/config.js');
  const example = block(section('Failover'), 'sh', 'UPSTREAMS=');
  const env: Record<string, string> = {};
  // `export NAME=value` and `export NAME='multi-line value'`, as a shell would read them.
  for (const match of example.matchAll(/^export (\w+)=(?:'([\s\S]*?)'|(\S+))/gm)) env[match[1] as string] = match[2] ?? (match[3] as string);
  assert.ok(env.UPSTREAMS !== undefined && env.GATEWAY_API_KEYS !== undefined);
  const config = loadConfig(env);
  assert.deepEqual(config.upstreams.map((u) => [u.name, u.tier]), [['workspace-a', 0], ['workspace-b', 0], ['backup', 1]]);
  assert.equal(config.injectsCredentials, true);
});

test("README's configuration table lists exactly the variables the config schema knows, with the schema's defaults", async () => {
  const { configVariables, loadConfig } = await import('../../src/config.js');
  const schema = configVariables();
  const known = new Set(schema.map((v) => v.name));
  // Rows: | `NAME` | default | meaning |, or two names sharing a row: `A` / `B` | `1` / `2`.
  const rows = new Map<string, string>();
  for (const match of section('Configuration').matchAll(/^\| (`[A-Z0-9_]+`(?: \/ `[A-Z0-9_]+`)*) \| ([^|]*) \|/gm)) {
    const names = (match[1] as string).split(' / ').map((n) => n.slice(1, -1));
    const defaults = names.length === 1 ? [(match[2] as string).trim()] : (match[2] as string).split(' / ').map((d) => d.trim());
    assert.equal(defaults.length, names.length, `row ${match[1] as string}: one default per variable`);
    names.forEach((name, i) => {
      assert.ok(!rows.has(name), `${name} has one row`);
      rows.set(name, defaults[i] as string);
    });
  }
  assert.deepEqual([...rows.keys()].filter((n) => !known.has(n)), [], 'README lists no variable the schema does not know');
  assert.deepEqual(schema.map((v) => v.name).filter((n) => !rows.has(n)), [], 'README lists every variable the schema knows');

  const defaults = loadConfig({});
  for (const { name, defaultValue } of schema) {
    const cell = rows.get(name) as string;
    const literal = /^`([^`]*)`/.exec(cell)?.[1];
    if (defaultValue === undefined) {
      // No default in the schema: README says so in words (unset, built-in, ...) or names what it derives from.
      assert.ok(literal === undefined || known.has(literal), `${name}: README gives the default ${cell}, the schema has none`);
      continue;
    }
    // README's default, given as the variable's value, configures exactly what leaving it unset does.
    const value = cell === 'empty' ? '' : literal;
    assert.ok(value !== undefined, `${name}: README's default cell "${cell}" starts with no \`value\` (schema default ${defaultValue})`);
    assert.deepEqual(loadConfig({ [name]: value }), defaults, `${name}: README's default ${cell} is not the schema's ${defaultValue}`);
  }
});

test("README's --print-config paragraph names every variable the configuration table marks secret", async () => {
  const { configVariables } = await import('../../src/config.js');
  const paragraph = /`--print-config` never prints[\s\S]*?\n\n/.exec(README)?.[0] ?? '';
  const secrets = configVariables().filter((v) => v.secret === true).map((v) => v.name);
  assert.ok(secrets.length > 0);
  assert.deepEqual(secrets.filter((name) => !paragraph.includes(`\`${name}\``)), [], 'README names each secret variable');
});

test("monitoring/README names every gateway Prometheus scrapes (monitoring/prometheus.yml's targets)", async () => {
  const { parse } = await import('yaml');
  const config = parse(readFileSync(join(REPO_ROOT, 'monitoring/prometheus.yml'), 'utf8')) as {
    scrape_configs: { static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[] }[] }[];
  };
  const targets = config.scrape_configs.flatMap((job) => [
    ...(job.static_configs ?? []).flatMap((c) => c.targets.map((t) => t.split(':')[0] as string)),
    ...(job.dns_sd_configs ?? []).flatMap((c) => c.names),
  ]);
  assert.ok(targets.length > 0);
  const row = readFileSync(join(REPO_ROOT, 'monitoring/README.md'), 'utf8').split('\n').find((l) => l.startsWith('| `prometheus.yml` |')) ?? '';
  assert.deepEqual(targets.filter((t) => !new RegExp(`\`${t}(?::\\d+[^\`]*)?\``).test(row)), [], 'every scraped gateway is named in monitoring/README');
});

test('README "Keys, teams and budgets" example from zero runs as written (from its second step, against a gateway started with ADMIN_API_KEY over the mock)', { timeout: 60_000 }, async () => {
  const adminKey = 'readme-admin-key-0123456789abcdef-0123456789';
  const mock = await createMockUpstream();
  const { gateway } = await launchGateway({ UPSTREAM_URL: mock.url, ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789', ADMIN_API_KEY: adminKey, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GOVERNANCE_POLL_MS: '100' });
  try {
    const adminUrl = (gateway.admin as { url: string }).url;
    const example = block(section('Keys, teams and budgets'), 'sh', '# 2. A team');
    assert.match(example, /export ADMIN_API_KEY=.*\n.*npm start &/, 'step 1 starts the gateway with ADMIN_API_KEY');
    const script = example.slice(example.indexOf('# 2. A team')).replaceAll('http://127.0.0.1:8081', adminUrl).replaceAll(DOCUMENTED_URL, gateway.url);
    const { stdout } = await run('/bin/sh', ['-ec', script], { cwd: REPO_ROOT, env: { ...keyless(), ADMIN_API_KEY: adminKey, ADMIN_URL: adminUrl }, timeout: 30_000 });
    assert.match(stdout, /cgw_[0-9A-Za-z]{40}/, 'the CLI prints the new secret');
    assert.match(stdout, /^message remaining today: \$10\.000000$/m, stdout);
    assert.match(stdout, /alice-laptop|key_/, 'the spend by key');
    assert.match(stdout, /"alice"/, 'the spend by user');
  } finally {
    await gateway.shutdown();
    await mock.close();
  }
});
