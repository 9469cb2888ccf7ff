#!/usr/bin/env node
// Makes `npm test` and `npm run demo` work on a fresh clone: installs the locked npm dependencies
// when they are missing and, for the tests, the Debian tools they drive for real (promtool and
// prometheus, redis-server, docker-compose to validate the compose file, chromium for the console's
// browser tests, PostgreSQL's server binaries for the governance store tests). With --build (the demo
// and the mock), it then compiles the gateway with its tools (dist/src and dist/tools), saying so
// first: tsc takes 15-30 s and prints nothing while it works. Plain Node, no dependencies: it runs
// before they exist.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

const forTests = process.argv.includes('--tests');
const lock = 'package-lock.json';
const installed = 'node_modules/.package-lock.json';
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
  process.stderr.write(`claude-gateway ${version}: installing dependencies (npm ci)\n`);
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
}

if (forTests) {
  const has = (cmd) => {
    try {
      execSync(`command -v ${cmd}`, { stdio: 'ignore', shell: '/bin/sh' });
      return true;
    } catch {
      return false;
    }
  };
  // command -> Debian package
  const tools = { promtool: 'prometheus', prometheus: 'prometheus', 'redis-server': 'redis-server', 'docker-compose': 'docker-compose', chromium: 'chromium' };
  const missing = [...new Set(Object.entries(tools).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
  // Debian keeps PostgreSQL's server binaries off PATH, in /usr/lib/postgresql/<version>/bin
  // (test/helpers/postgres-server.ts starts them from there).
  const pgRoot = '/usr/lib/postgresql';
  const hasPostgres = existsSync(pgRoot) && readdirSync(pgRoot).some((version) => existsSync(`${pgRoot}/${version}/bin/initdb`));
  if (!hasPostgres) missing.push('postgresql');
  if (missing.length > 0) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!root || !has('apt-get')) {
      process.stderr.write(`claude-gateway: the tests need ${missing.join(', ')} (Debian packages); install them and run again\n`);
      process.exit(1);
    }
    process.stderr.write(`claude-gateway: installing ${missing.join(', ')} (apt-get)\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execSync('apt-get update -qq', { stdio: 'inherit', env });
    execSync(`apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`, { stdio: 'inherit', env });
  }
  // Tests start private instances on free ports and stop only those: nothing here stops a service.
}

if (process.argv.includes('--build')) {
  const started = Date.now();
  process.stderr.write('claude-gateway: compiling the gateway and its tools (npm run build:tools: TypeScript into dist/src and dist/tools, usually 15-30 s)...\n');
  execSync('npm run build:tools --silent', { stdio: 'inherit' });
  process.stderr.write(`claude-gateway: compiled in ${((Date.now() - started) / 1000).toFixed(1)} s; starting\n`);
}
