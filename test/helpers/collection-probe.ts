import inspector from 'node:inspector';
import net from 'node:net';

/**
 * Preloaded into a gateway process (`node --import`): on SIGUSR2 it reports on stderr, as
 * `collection-probe <JSON>`, the collections the process asked of V8 through the in-process
 * inspector (HeapProfiler.collectGarbage) and, for each, whether a server was listening yet. It
 * wraps the inspector session's `post` and net.Server's `listen`, and answers from what it saw, so
 * no collection timing or heap figure enters the answer.
 */
const collections: { listening: boolean }[] = [];
let listening = false;

/** The originals, called with the instance's own `this` (Reflect.apply). */
const listen: unknown = Reflect.get(net.Server.prototype, 'listen');
const post: unknown = Reflect.get(inspector.Session.prototype, 'post');

Reflect.set(net.Server.prototype, 'listen', function (this: net.Server, ...args: unknown[]): unknown {
  listening = true;
  return Reflect.apply(listen as (...a: unknown[]) => unknown, this, args);
});
Reflect.set(inspector.Session.prototype, 'post', function (this: inspector.Session, method: string, ...rest: unknown[]): unknown {
  if (method === 'HeapProfiler.collectGarbage') collections.push({ listening });
  return Reflect.apply(post as (...a: unknown[]) => unknown, this, [method, ...rest]);
});

process.on('SIGUSR2', () => {
  process.stderr.write(`collection-probe ${JSON.stringify({ collections })}\n`);
});
