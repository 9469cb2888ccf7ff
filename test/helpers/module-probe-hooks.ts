import type { MessagePort } from 'node:worker_threads';

/**
 * Module hooks of test/helpers/module-probe.ts (they run on the loader's own thread): every module
 * the process resolves through `import` (static or dynamic) is posted to the probe by its URL.
 */
let port: MessagePort | undefined;

export function initialize(data: { port: MessagePort }): void {
  port = data.port;
}

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string }> {
  const resolved = await next(specifier, context);
  port?.postMessage(resolved.url);
  return resolved;
}
