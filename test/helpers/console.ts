import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConsole } from '../../src/console/index.js';
import type { Gateway } from '../../src/server.js';

export const ADMIN_KEY = 'admin-key-for-tests-0123456789abcdef';
export const VIEWER_KEY = 'viewer-key-for-tests-0123456789abcdef';

/** The console of a running gateway on a listener of its own (loopback, free port). */
export async function startConsoleFor(gateway: Gateway): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const { handle } = createConsole({
    adminKey: ADMIN_KEY,
    viewerKey: VIEWER_KEY,
    registry: gateway.metrics.registry,
    breakers: () => gateway.breakers.snapshot(),
    headroom: () => gateway.upstream.all.map((u) => ({ upstream: u.name, kind: u.kind, tier: u.tier, headroom: u.headroom.reported, restingMs: u.headroom.restLeftMs() })),
  });
  const server = createServer((req, res) => {
    handle(req, res).then(
      (answered) => {
        if (!answered) res.writeHead(404).end();
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
