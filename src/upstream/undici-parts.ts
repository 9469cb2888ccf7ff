import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The parts of undici the gateway uses, loaded without undici's index. The index requires all of
 * undici (fetch, WebSocket, EventSource, the mock agents, caches, interceptors: about 110 files,
 * 1.1 MB of source V8 keeps as strings, about 3 MB of heap for the life of the process); the pool,
 * its connector, its errors and the request API are 27 of them.
 *
 * Invariants:
 * - every export here is the very object undici's index exports (undici's index requires these
 *   same files; test/unit/undici-parts.test.ts checks the identity, so an undici upgrade that moves
 *   a file fails that test rather than the gateway);
 * - `Dispatcher.prototype` gets the request API (`request`, `stream`, `pipeline`, `upgrade`,
 *   `connect`) exactly as undici's index gives it, so a Pool made here behaves as one made there.
 */
const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors;

const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
// What undici's index does on load (`Object.assign(Dispatcher.prototype, api)`); idempotent.
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

/** A header list as undici's parser hands it to a dispatch handler: name, value, name, value... (Buffers; strings possible). */
export type RawHeaderList = readonly (Buffer | string)[];

const util = require('undici/lib/core/util.js') as {
  headerNameToString: (name: Buffer | string) => string;
  parseHeaders: (raw: RawHeaderList) => Record<string, string | string[]>;
};
/**
 * undici's reader of one raw header name: a well-known name (content-type, request-id, ...) comes back
 * as one interned lower-case string, found in a tree over its bytes (no string built); others lower-cased.
 * (undici's own, not exported by its index: test/unit/undici-parts.test.ts checks it.)
 */
export const headerNameToString = util.headerNameToString;
/** undici's raw list to headers object (what its handler wrapper builds for every answer), for readers that want one. */
export const parseHeaders = util.parseHeaders;
