import type { IncomingMessage } from 'node:http';
import { protocolOf } from './stage.js';

/**
 * The gateway's own origin as clients should reach it, for URLs the gateway writes into answers
 * (batch `results_url`). A client's `Host` header must not steer them elsewhere, so the rule is:
 *   1. PUBLIC_URL when set;
 *   2. else the request's Host, if allowed: ALLOWED_HOSTS when set, otherwise the listen address
 *      and localhost / 127.0.0.1 / [::1], each with the port the request arrived on;
 *   3. else the address the request arrived on (the socket's local address and port).
 */
export interface PublicOriginOptions {
  publicUrl: string | undefined;
  allowedHosts: ReadonlySet<string> | undefined;
  /** HOST, the listen address. */
  listenHost: string;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

function bracketed(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** The socket's local address as a URL host (IPv4-mapped IPv6 shown as IPv4). */
function arrivalHost(req: IncomingMessage): string {
  const local = req.socket.localAddress ?? '127.0.0.1';
  const address = local.startsWith('::ffff:') ? local.slice(7) : local;
  return `${bracketed(address)}:${req.socket.localPort ?? 0}`;
}

export function publicOrigin(options: PublicOriginOptions): (req: IncomingMessage) => string {
  if (options.publicUrl !== undefined) {
    const fixed = options.publicUrl;
    return () => fixed;
  }
  const wildcard = options.listenHost === '0.0.0.0' || options.listenHost === '::';
  const defaultNames = wildcard ? LOOPBACK_NAMES : [...LOOPBACK_NAMES, bracketed(options.listenHost.toLowerCase())];
  const allowed = (host: string, port: number | undefined): boolean =>
    options.allowedHosts !== undefined ? options.allowedHosts.has(host) : defaultNames.some((name) => host === `${name}:${port ?? 0}`);

  return (req) => {
    const host = req.headers.host?.toLowerCase();
    const origin = host !== undefined && allowed(host, req.socket.localPort) ? host : arrivalHost(req);
    return `${protocolOf(req)}://${origin}`;
  };
}
