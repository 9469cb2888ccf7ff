import { createHash } from 'node:crypto';
import type { BudgetCounters, BudgetLine, ReserveOutcome, ReserveRequest, SettleRequest, Used } from './budget-counters.js';

/**
 * Budget counters in Redis, shared by every instance (REDIS_URL). Why Redis and not a database
 * transaction: admission is on every governed call's hot path, and one EVALSHA is one round trip
 * to a server the gateway already coordinates through (flights, rate limits), where a serializable
 * transaction over the same rows would be several round trips and lock waits under exactly the
 * concurrency budgets must withstand. The ledger (the database) stays the durable record: a
 * counter that does not exist yet is created from the spend the ledger holds for its period.
 *
 * One script checks every line and reserves on all of them, or on none (Redis runs a script
 * atomically). Keys of one call share the hash tag of its group (team), so the script touches one
 * Cluster slot: counters `cgw:bud:{group}:c:<counter>` (a hash: usd, tok; PEXPIREAT its period's end
 * plus a grace), open reservations in the sorted set `cgw:bud:{group}:open` (score: expiry; member:
 * `id usd tok key...`). Each reserve first releases up to 64 expired reservations of the group.
 */

export interface RedisCommands {
  send<T>(key: string | undefined, args: string[]): Promise<T>;
}

const RESERVE = `
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 64)
for _, m in ipairs(expired) do
  local parts = {}
  for p in string.gmatch(m, '%S+') do parts[#parts + 1] = p end
  for j = 4, #parts do
    if redis.call('EXISTS', parts[j]) == 1 then
      redis.call('HINCRBY', parts[j], 'usd', 0 - tonumber(parts[2]))
      redis.call('HINCRBY', parts[j], 'tok', 0 - tonumber(parts[3]))
    end
  end
  redis.call('ZREM', KEYS[1], m)
end
local n = #KEYS - 1
local missing = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    local o = 6 + (i - 1) * 5
    if ARGV[o + 3] ~= '-1' then
      redis.call('HSET', KEYS[i + 1], 'usd', ARGV[o + 3], 'tok', ARGV[o + 4])
      redis.call('PEXPIREAT', KEYS[i + 1], ARGV[o + 2])
    else
      missing[#missing + 1] = i - 1
    end
  end
end
if #missing > 0 then return {'needs-base', missing} end
local used = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i + 1], 'usd', 'tok')
  used[#used + 1] = tonumber(v[1]) or 0
  used[#used + 1] = tonumber(v[2]) or 0
end
local usd = tonumber(ARGV[4])
local tok = tonumber(ARGV[5])
for i = 1, n do
  local o = 6 + (i - 1) * 5
  local lu = tonumber(ARGV[o])
  local lt = tonumber(ARGV[o + 1])
  if (lu >= 0 and used[2 * i - 1] + usd > lu) or (lt >= 0 and used[2 * i] + tok > lt) then
    return {'refused', {i - 1}, used}
  end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i + 1], 'usd', ARGV[4])
  redis.call('HINCRBY', KEYS[i + 1], 'tok', ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[3]) - now) + 3600000)
return {'reserved', {}, used}
`;

const SETTLE = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local du = ARGV[4]
local dt = ARGV[5]
if removed == 1 then
  du = ARGV[2]
  dt = ARGV[3]
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'usd', du)
    redis.call('HINCRBY', KEYS[i], 'tok', dt)
  end
end
return removed
`;

const sha1 = (script: string): string => createHash('sha1').update(script).digest('hex');

type Reply = [string, number[], number[]?];

export class RedisBudgetCounters implements BudgetCounters {
  private readonly reserveSha = sha1(RESERVE);
  private readonly settleSha = sha1(SETTLE);

  constructor(
    private readonly redis: RedisCommands,
    private readonly prefix = 'cgw:bud:',
  ) {}

  private keys(group: string, lines: readonly BudgetLine[]): string[] {
    const tag = `${this.prefix}{${group}}:`;
    return [tag + 'open', ...lines.map((l) => `${tag}c:${l.counter}`)];
  }

  /** EVALSHA, and EVAL once when the server does not have the script yet (a restart, a new Cluster master). */
  private async script<T>(script: string, sha: string, keys: string[], args: string[]): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.redis.send<T>(keys[0], ['EVALSHA', sha, ...tail]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.send<T>(keys[0], ['EVAL', script, ...tail]);
    }
  }

  async reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const keys = this.keys(request.group, request.lines);
    const counters = keys.slice(1);
    const member = [request.id, String(request.amount.microUsd), String(request.amount.tokens), ...counters].join(' ');
    const args = [String(request.now), member, String(request.expiresAt), String(request.amount.microUsd), String(request.amount.tokens)];
    for (const line of request.lines) {
      const base = request.bases?.get(line.counter);
      args.push(String(line.limitMicroUsd ?? -1), String(line.limitTokens ?? -1), String(line.expireAt), String(base?.microUsd ?? -1), String(base?.tokens ?? 0));
    }
    const reply = await this.script<Reply>(RESERVE, this.reserveSha, keys, args);
    const kind = reply[0];
    if (kind === 'needs-base') return { kind, lines: reply[1].map(Number) };
    const flat = (reply[2] ?? []).map(Number);
    const used: Used[] = [];
    for (let i = 0; i < flat.length; i += 2) used.push({ microUsd: flat[i] as number, tokens: flat[i + 1] as number });
    if (kind === 'refused') return { kind, line: Number(reply[1][0]), used };
    return { kind: 'reserved', used };
  }

  async settle(request: SettleRequest): Promise<void> {
    const keys = this.keys(request.group, request.lines);
    const member = [request.id, String(request.reserved.microUsd), String(request.reserved.tokens), ...keys.slice(1)].join(' ');
    const { actual, reserved } = request;
    await this.script<number>(SETTLE, this.settleSha, keys, [
      member,
      String(actual.microUsd - reserved.microUsd),
      String(actual.tokens - reserved.tokens),
      String(actual.microUsd),
      String(actual.tokens),
    ]);
  }
}

const SAFE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** An id as it may appear in a counter name (no spaces, braces or colons): itself when plain, else a digest of it. */
export function safeId(id: string): string {
  return SAFE_ID.test(id) ? id : 'h' + createHash('sha256').update(id).digest('hex').slice(0, 32);
}
