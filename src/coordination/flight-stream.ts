/**
 * The format of a cross-instance flight's Redis stream (flight-keys.ts names the stream): written by
 * the leader (flight-publisher.ts), read by followers (flight-reader.ts).
 */

import type { GatewayErrorCode } from '../core/errors.js';

/** Entry types in a flight's stream (field `t`); `d` carries the data. */
export const ENTRY = { head: 'h', chunk: 'c', end: 'e', error: 'x' } as const;

/**
 * The end entry's data when the leader found its answer whole (pipeline/reuse.ts). Any other data
 * (an empty one, as instances before this mark wrote) is an end that followers must not reuse.
 */
export const WHOLE_END = 'whole';

/**
 * The code of an error entry for a failure that was no GatewayError (or a broken publisher), and what
 * followers make of an entry they cannot read or whose code they do not know (another version, a
 * corrupted entry): the shared call failed upstream of them.
 */
export const REMOTE_FALLBACK_CODE: GatewayErrorCode = 'UPSTREAM_UNREACHABLE';

/**
 * The error entry's data: what followers turn back into a GatewayError. `code` is read back through
 * `isErrorCode` (core/errors.ts); `status` is written for readers of any version, and read by none
 * (a code's status is its row in ERRORS). `aborted`: nobody listened.
 */
export interface PublishedError {
  code: string;
  status: number;
  message: string;
  aborted?: boolean;
}
