import { connect, createServer } from 'node:net';
import { listenOutsideEphemeralRange } from '../../tools/mock-upstream/stable-port.js';

/**
 * A loopback port that was free a moment ago (and now has no listener). It lies below the kernel's
 * ephemeral range (as a mock's port does, stable-port.ts), so no listen(0) and no outgoing
 * connection is handed it meanwhile: a server a test stops and starts again on it (a Redis that is
 * killed and restarted) finds it free.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await listenOutsideEphemeralRange(server, '127.0.0.1');
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Resolves with the connect error code (ECONNREFUSED: nothing listens), or 'connected'. */
export function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
