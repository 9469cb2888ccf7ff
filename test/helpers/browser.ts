import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { forSuite } from './suite.js';

/**
 * Debian's chromium (apt: chromium), driven by playwright-core: no browser is ever downloaded.
 * CHROMIUM_PATH overrides the path. As root, Chromium's sandbox cannot start: --no-sandbox then.
 */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) throw new Error(`no Chromium at ${path}: install Debian's chromium package (npm test's set-up does) or set CHROMIUM_PATH`);
  return path;
}

export function browserForSuite(): Browser {
  return forSuite(
    () =>
      chromium.launch({
        executablePath: chromiumPath(),
        args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
        timeout: 30_000,
      }),
    (browser) => browser.close(),
    'the suite\'s browser',
  );
}

/** Where tests write screenshots and other artifacts (kept after the run; not in git). */
export function artifactsDir(...parts: string[]): string {
  const dir = ['test-artifacts', ...parts].join('/');
  mkdirSync(dir, { recursive: true });
  return dir;
}
