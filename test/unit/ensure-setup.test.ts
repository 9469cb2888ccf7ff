import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/k6.js';

const run = promisify(execFile);

test('npm run demo says it is compiling before the silent build, and when it is done', async () => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts.demo ?? '', /^node scripts\/ensure-setup\.mjs --build && node dist\/tools\/demo\/main\.js$/, 'the demo builds through ensure-setup');
  // A stand-in `npm` first on PATH: the build's place in the output, without compiling anything.
  const bin = mkdtempSync(join(tmpdir(), 'cgw-fake-npm-'));
  try {
    writeFileSync(join(bin, 'npm'), '#!/bin/sh\necho "fake npm $*" >&2\n');
    chmodSync(join(bin, 'npm'), 0o755);
    const { stderr } = await run(process.execPath, [join(REPO_ROOT, 'scripts/ensure-setup.mjs'), '--build'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      timeout: 30_000,
    });
    const lines = stderr.split('\n').filter((l) => l !== '' && !l.includes('npm ci'));
    assert.match(lines[0] ?? '', /^claude-gateway: compiling the gateway and its tools \(npm run build:tools/, stderr);
    assert.equal(lines[1], 'fake npm run build:tools --silent', stderr);
    assert.match(lines[2] ?? '', /^claude-gateway: compiled in \d+\.\d s; starting$/, stderr);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});
