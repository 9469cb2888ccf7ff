/**
 * The Redis keys and Lua scripts of one cross-instance flight. Every key of a flight carries the
 * same hash tag `{<fingerprint>}`, so on Redis Cluster (and Valkey) they live in one slot and a
 * script may touch them together.
 *
 *   <p>{K}:claim              the flight id of the instance leading K (SET NX PX, heartbeated)
 *   <p>{K}:s:<flight>         the leader's stream: entry ids 0-1, 0-2, ... are sequence numbers
 *   <p>{K}:l:<flight>         live remote listeners: ZSET follower -> expiry (server clock)
 *   <p>{K}:full:<flight>      present once the answer passed the joiners' cap: nobody new follows
 *
 * The claim is only ever extended or deleted by its owner: both compare the flight id first, in the
 * same script (the singleflight rule across machines: a late instance cannot touch its successor).
 */

export class FlightKeys {
  readonly base: string;
  readonly claim: string;

  constructor(prefix: string, key: string) {
    this.base = `${prefix}{${key}}`;
    this.claim = `${this.base}:claim`;
  }

  stream(flightId: string): string {
    return `${this.base}:s:${flightId}`;
  }

  listeners(flightId: string): string {
    return `${this.base}:l:${flightId}`;
  }

  full(flightId: string): string {
    return `${this.base}:full:${flightId}`;
  }
}

/** Milliseconds on the Redis server's clock: listener expiries never depend on instances' clocks. */
const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Claim K or follow its holder, atomically with registering as a listener, so a leader that checks
 * its listeners can never miss a follower that already decided to follow it.
 * KEYS: claim, full-key prefix, listener-key prefix (strings, routed by the claim's slot).
 * ARGV: new flight id, claim TTL, follower id, listener TTL.
 * Returns {'leader', id} | {'follower', holder} | {'full', holder}.
 */
export const JOIN = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'leader', ARGV[1]} end
local holder = redis.call('GET', KEYS[1])
if not holder then return {'retry', ''} end
if redis.call('EXISTS', KEYS[2] .. holder) == 1 then return {'full', holder} end
${NOW}
local l = KEYS[3] .. holder
redis.call('ZADD', l, now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', l, tonumber(ARGV[4]) * 2)
return {'follower', holder}`;

/**
 * The leader's heartbeat: compare-and-pexpire the claim, then count live listeners.
 * KEYS: claim, listeners. ARGV: flight id, claim TTL. Returns -1 when the claim is no longer ours.
 */
export const LEADER_HEARTBEAT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZCARD', KEYS[2])`;

/** Compare-and-delete. KEYS: claim. ARGV: flight id. Returns 1 when it was ours and is now gone. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Asked when the leader's last local client left: if no remote listener is alive, release the claim
 * (compare-and-delete) in the same step, so nobody can start following a call about to be aborted.
 * KEYS: claim, listeners. ARGV: flight id. Returns the number of live listeners (0 = released).
 */
export const RELEASE_UNLESS_LISTENED = `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local n = redis.call('ZCARD', KEYS[2])
if n > 0 then return n end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * A follower's heartbeat: renews its listener entry while the claim still names the flight it
 * follows. KEYS: claim, listeners. ARGV: flight id, follower id, listener TTL.
 * Returns 1 while the leader holds the claim, 0 once it does not (done, released or lost).
 */
export const FOLLOWER_HEARTBEAT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then redis.call('ZREM', KEYS[2], ARGV[2]) return 0 end
${NOW}
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 2)
return 1`;

/**
 * One published entry: XADD with the explicit id 0-<seq> (Redis refuses an id not above the last
 * one, so a replayed or reordered publish can never land) and the stream's TTL renewed.
 * KEYS: stream. ARGV: id, type, data, stream TTL.
 */
export const PUBLISH = `
redis.call('XADD', KEYS[1], ARGV[1], 't', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

export function evalArgs(script: string, keys: readonly string[], args: readonly (string | number)[]): string[] {
  return ['EVAL', script, String(keys.length), ...keys, ...args.map(String)];
}
