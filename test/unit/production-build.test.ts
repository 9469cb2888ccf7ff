import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { REPO_ROOT } from '../helpers/k6.js';

/**
 * The production build (`npm run build:prod`, tsconfig.build.json, the Dockerfile's default stage)
 * holds the gateway only: the mock upstream and the demos live in tools/ and never reach it. tsc
 * also compiles every file an included file imports, so the include list alone is not enough: no
 * file under src/ may import from outside src/. And the mock is an oracle: it imports nothing from
 * the gateway it checks.
 */

const SRC = join(REPO_ROOT, 'src');
const MOCK = join(REPO_ROOT, 'tools', 'mock-upstream');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.isFile() && e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier of a file: `import ... from`, `export ... from`, `import '...'` and `import('...')`. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1] ?? m[2];
    if (spec !== undefined) found.push(spec);
  }
  return found;
}

/** Relative imports of the files under `root` that resolve outside it, as `file -> specifier`. */
function importsLeaving(root: string): string[] {
  const leaving: string[] = [];
  for (const file of tsFiles(root)) {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      if (target !== root && !target.startsWith(root + sep)) leaving.push(`${relative(REPO_ROOT, file)} -> ${spec}`);
    }
  }
  return leaving;
}

test('tsconfig.build.json compiles src/ only: no mock, no demo, no tools', () => {
  const config = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include?: string[]; files?: string[] };
  const entries = [...(config.include ?? []), ...(config.files ?? [])];
  assert.ok(entries.length > 0, 'tsconfig.build.json names what it compiles');
  for (const entry of entries) {
    assert.ok(entry.startsWith('src/'), `${entry}: the production build compiles src/ only`);
    assert.doesNotMatch(entry, /mock|demo|tools/, entry);
  }
});

test('no file under src/ imports from outside src/ (so tsc cannot pull the mock or the demos into the production build)', () => {
  const files = tsFiles(SRC);
  assert.ok(files.length > 50, 'the scan sees the gateway');
  assert.ok(!files.some((f) => /mock-upstream|[/\\]demo/.test(relative(SRC, f))), 'no mock or demo source under src/');
  assert.deepEqual(importsLeaving(SRC), []);
});

test('the mock upstream imports nothing from the gateway it checks', () => {
  assert.ok(tsFiles(MOCK).length > 10, 'the scan sees the mock');
  assert.deepEqual(importsLeaving(MOCK), []);
});

test("the Dockerfile's default (last) stage is the gateway built by build:prod; the mock has a stage of its own", () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^(?=FROM )/m).filter((s) => s.startsWith('FROM '));
  const byName = new Map(stages.map((s) => [/^FROM \S+ AS (\S+)/.exec(s)?.[1] ?? '', s]));
  const last = stages.at(-1) ?? '';
  assert.match(last, /^FROM \S+ AS gateway\n/, 'the gateway is the default target');
  assert.doesNotMatch(last, /tools|mock|demo/, 'the production image copies no tool');
  assert.match(last, /COPY --from=build \S+ \/app\/dist\/src /, 'it copies the production build');
  assert.match(byName.get('build') ?? '', /npm run build:prod/, 'the production build is build:prod');
  assert.doesNotMatch(byName.get('build') ?? '', /tools/, 'the build stage has no tool sources');
  assert.match(byName.get('mock') ?? '', /CMD \["node", "dist\/tools\/mock-upstream\/main\.js"\]/, 'the mock image runs the mock');
});
