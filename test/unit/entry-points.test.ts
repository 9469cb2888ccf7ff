import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../helpers/k6.js';

/**
 * Every process that starts a gateway runs with the gateway's V8 settings (src/v8-heap.ts: pretenuring
 * off, WebAssembly on Liftoff), set before any other module loads. A benchmark entry that started the
 * gateway without them once ran with pretenuring on, alone, and its extra collector work was counted
 * as governance's cost (issue 26).
 */

/** TypeScript sources under `dir` (no node_modules, no build output). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Files that load src/server.ts (statically or dynamically) and call its startGateway: process entry points. */
function gatewayEntries(): string[] {
  return ['src', 'benchmarks', 'tools']
    .flatMap((dir) => sources(join(REPO_ROOT, dir)))
    .filter((file) => {
      const text = readFileSync(file, 'utf8');
      return /['/]server\.js'/.test(text) && /\bstartGateway\(/.test(text) && !file.endsWith(join('src', 'server.ts'));
    });
}

describe('process entry points', () => {
  test('every module that starts a gateway imports the V8 settings before anything else', () => {
    const entries = gatewayEntries();
    assert.ok(entries.length >= 3, `found the entries (main, the demo, the governed bench): ${entries.map((f) => relative(REPO_ROOT, f)).join(', ')}`);
    for (const file of entries) {
      const firstImport = readFileSync(file, 'utf8').match(/^import .*$/m)?.[0];
      assert.match(firstImport ?? '', /^import '[./]*(src\/)?v8-heap\.js';$/, `${relative(REPO_ROOT, file)} imports ${firstImport ?? 'nothing'} first`);
    }
  });
});
