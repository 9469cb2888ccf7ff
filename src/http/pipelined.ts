import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kQueued = Symbol('claude-gateway.queued-responses');
type TrackedSocket = Socket & { [kQueued]?: Set<ServerResponse> };

/**
 * Node never emits `close` on a response still queued behind another on a pipelined connection
 * when that connection closes (only its request is destroyed). Everything that releases a
 * request's resources listens for the response's `close` (capacity slot, flight subscription,
 * upstream abort, drain at shutdown), so the gateway emits it itself for such responses. One
 * listener per socket; the set holds only responses not yet closed.
 */
export function closeQueuedWithSocket(req: IncomingMessage, res: ServerResponse): void {
  if (res.socket !== null) return; // attached: node emits close itself
  const socket = req.socket as TrackedSocket;
  let queued = socket[kQueued];
  if (queued === undefined) {
    const set = new Set<ServerResponse>();
    queued = set;
    socket[kQueued] = set;
    socket.once('close', () => {
      const stranded = [...set];
      set.clear();
      for (const r of stranded) if (r.socket === null) r.emit('close');
    });
  }
  queued.add(res);
  res.once('close', () => queued.delete(res));
}
