import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';

/**
 * A port for a mock whose API port a script may close and reopen. While it is closed, the port is
 * free for anyone: an ephemeral port (listen(0)) is one the kernel also hands to other processes'
 * listen(0) and to every outgoing connection's local end (the gateway's own calls to the other
 * mocks included), so reopening it could fail with EADDRINUSE. A port below the kernel's ephemeral
 * range is only ever taken by a process that names it, so such a mock listens there.
 */

/** Linux's ephemeral range (the kernel's choice for listen(0) and connect()); undefined elsewhere. */
export function ephemeralRange(): [low: number, high: number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high) ? [low, high] : undefined;
  } catch {
    return undefined;
  }
}

/** How many ports below the ephemeral range are tried (at random) before falling back to an ephemeral one. */
const ATTEMPTS = 64;
/** The band below the ephemeral range that is tried: clear of the well-known and registered ports most services use. */
const BAND = 8_000;

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Makes `server` listen on a free port below the ephemeral range (or, where that range is unknown
 * or leaves no band below it, on an ephemeral port). Rejects with the listen error for anything but
 * a port in use.
 */
export async function listenOutsideEphemeralRange(server: Server, host: string, random: () => number = Math.random): Promise<void> {
  const range = ephemeralRange();
  const top = range === undefined ? 0 : range[0] - 1;
  const bottom = Math.max(10_000, top - BAND);
  if (top > bottom) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = bottom + Math.floor(random() * (top - bottom + 1));
      try {
        await listenOn(server, port, host);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  }
  await listenOn(server, 0, host);
}
