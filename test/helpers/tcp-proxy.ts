import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A tiny TCP forwarder between a gateway and Redis, to make a partition on demand: `blackhole()`
 * stops forwarding in both directions without closing anything (no FIN, no RST), exactly what a
 * dropped network path looks like to both ends. `heal()` cuts the stuck connections (their bytes
 * were lost) and forwards new ones again.
 */
export interface TcpProxy {
  port: number;
  blackhole(): void;
  /**
   * From now on, a connection whose client sends bytes containing `marker` is blackholed from that
   * chunk on (that chunk included): a partition of one connection among several to the same server.
   */
  blackholeWhen(marker: string): void;
  /** Connections blackholed by `blackholeWhen` so far. */
  readonly selectedDrops: number;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const dropped = new WeakSet<Socket>();
  let dropping = false;
  let marker: string | undefined;
  let selectedDrops = 0;
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ port: targetPort, host: '127.0.0.1' });
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (from === inbound && marker !== undefined && !dropped.has(inbound) && chunk.includes(marker)) {
          dropped.add(inbound);
          selectedDrops++;
        }
        if (!dropping && !dropped.has(inbound)) to.write(chunk);
      });
    };
    forward(inbound, outbound);
    forward(outbound, inbound);
    const end = (): void => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('close', end);
    outbound.on('close', end);
    inbound.on('error', end);
    outbound.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    blackhole: () => {
      dropping = true;
    },
    blackholeWhen: (m: string) => {
      marker = m;
    },
    get selectedDrops() {
      return selectedDrops;
    },
    heal: () => {
      dropping = false;
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
    },
    close: async () => {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
