import type { FlightHead } from '../pipeline/coalesce/flight.js';
import { answerHeadersOf, answerPairsOf, UPSTREAM_HEADER } from '../upstream/header-list.js';

/**
 * An answer head as instances exchange it through Redis (a relayed flight's head entry, a shared
 * cache entry): `{"status":200,"headers":[["name","value"],...],"eventStream":false}`, the headers
 * as [name, value] pairs with `x-gateway-upstream` last when an upstream served it. That is the form
 * every instance has written and read so far; a gateway keeps its heads flat (header-list.ts:
 * AnswerHeaders) and converts here, so instances of either version read each other's entries.
 */
export interface WireHead {
  status: number;
  headers: [string, string | readonly string[]][];
  eventStream: boolean;
}

/** The head in the form other instances read. */
export function wireHead(head: FlightHead): WireHead {
  const headers = answerPairsOf(head.headers);
  if (head.upstream !== undefined) headers.push([UPSTREAM_HEADER, head.upstream]);
  return { status: head.status, headers, eventStream: head.eventStream };
}

/**
 * A head read from another instance: pairs (the wire form) or already flat (a list of strings and
 * lists). `x-gateway-upstream` stays among the headers, where it was written: the bytes a client
 * gets are the same.
 */
export function headFromWire(wire: { status: number; headers: readonly unknown[]; eventStream: boolean }): FlightHead {
  const { headers } = wire;
  return { status: wire.status, headers: isPairs(headers) ? answerHeadersOf(headers) : (headers as FlightHead['headers']), eventStream: wire.eventStream };
}

/** Whether a list is [name, value] pairs (a flat list's first item is a name, a string). */
function isPairs(headers: readonly unknown[]): headers is WireHead['headers'] {
  return headers.length > 0 && Array.isArray(headers[0]);
}
