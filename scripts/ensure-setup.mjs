#!/usr/bin/env node
// Makes `npm test` and `npm run demo` work on a fresh clone: installs the locked npm dependencies
// when they are missing. Plain Node, no dependencies (it runs before they exist).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

const lock = 'package-lock.json';
const installed = 'node_modules/.package-lock.json';
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
  process.stderr.write(`claude-gateway ${version}: installing dependencies (npm ci)\n`);
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
}
