import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A bare HTTP server whose every answer the test writes by hand: for wire-level behaviour the mock does not script. */
export interface ScriptedUpstream {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function scriptedUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<ScriptedUpstream> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export function sseEvent(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
