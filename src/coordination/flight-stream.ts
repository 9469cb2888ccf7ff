/**
 * The format of a cross-instance flight's Redis stream (flight-keys.ts names the stream): written by
 * the leader (flight-publisher.ts), read by followers (flight-reader.ts).
 */

/** Entry types in a flight's stream (field `t`); `d` carries the data. */
export const ENTRY = { head: 'h', chunk: 'c', end: 'e', error: 'x' } as const;

/**
 * The end entry's data when the leader found its answer whole (pipeline/reuse.ts). Any other data
 * (an empty one, as instances before this mark wrote) is an end that followers must not reuse.
 */
export const WHOLE_END = 'whole';

/** The error entry's data: what followers turn back into a GatewayError. `aborted`: nobody listened. */
export interface PublishedError {
  code: string;
  status: number;
  message: string;
  aborted?: boolean;
}
