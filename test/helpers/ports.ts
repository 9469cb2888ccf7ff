import { createServer } from 'node:net';
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
