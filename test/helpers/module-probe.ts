import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

/**
 * Preloaded into a gateway process (`node --import`): on SIGUSR2 it reports on stderr, as
 * `module-probe <JSON array>`, every module the process has imported so far, named by its package
 * (`@aws-sdk/credential-providers`, `yaml`; a file at a package's root also as `undici/index.js`) or,
 * for the gateway's own, by its path from dist/ (`src/admin/server.js`). Built-ins are left out. ES
 * modules are seen by a resolve hook as they are imported; CommonJS ones (a package's own `require`s, and `require` from the gateway) are read from
 * the CommonJS module cache when the report is asked for.
 */
const loaded = new Set<string>();
const { port1, port2 } = new MessageChannel();
const add = (url: string): void => {
  if (!url.startsWith('file://')) return;
  const inPackage = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/([^/]+$)?/.exec(url);
  loaded.add(inPackage?.[1] ?? url.replace(/^.*\/dist\//, ''));
  // A file at a package's root is named too (`undici/index.js`): its entry, as against its parts.
  if (inPackage?.[2] !== undefined) loaded.add(`${inPackage[1]}/${inPackage[2]}`);
};
port1.on('message', add);
port1.unref();
register(new URL('./module-probe-hooks.js', import.meta.url), { data: { port: port2 }, transferList: [port2] });

const commonJsCache = createRequire(import.meta.url).cache;

process.on('SIGUSR2', () => {
  for (const path of Object.keys(commonJsCache)) add(pathToFileURL(path).href);
  process.stderr.write(`module-probe ${JSON.stringify([...loaded].sort())}\n`);
});
