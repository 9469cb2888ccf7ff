// @ts-check
/**
 * Per-key rate limiting: one API key hammers the gateway at HAMMER_RPM (default 4 x RATE_LIMIT_RPM)
 * requests per minute while a second key sends SECOND_RPM (default RATE_LIMIT_RPM / 3) per minute,
 * both for DURATION_S (default 50 s, 2..59).
 *
 * Expected: the hammering key gets 429 with `retry-after` and an Anthropic `rate_limit_error` body
 * once its budget is spent; the second key, which has a budget of its own, keeps succeeding.
 * The gateway's limiter (express-rate-limit) gives each key its own 60 s window starting at the
 * key's first request. With the default fresh per-run keys the 50 s run stays inside that first
 * window, so the hammering key is allowed at most RATE_LIMIT_RPM of the ~3.3 x RATE_LIMIT_RPM
 * requests it sends (threshold hammer_allowed count<=RPM). With keys given through env, an older
 * window may end mid-run, so the bound is relaxed to 2 x RATE_LIMIT_RPM.
 *
 * Gateway env: RATE_LIMIT_RPM=60 (pass the same value here: -e RATE_LIMIT_RPM=60). Keys are made
 * unique per run (a fresh budget each time); when the gateway enforces GATEWAY_API_KEYS, pass two
 * valid ones as -e API_KEY_HAMMER=... -e API_KEY_SECOND=... (and wait 60 s between runs).
 *
 *   k6 run load-tests/rate-limit.js -e GATEWAY_URL=http://127.0.0.1:8080 -e RATE_LIMIT_RPM=60
 *   # the suite's short run, against a gateway with RATE_LIMIT_RPM=20:
 *   k6 run load-tests/rate-limit.js -e RATE_LIMIT_RPM=20 -e DURATION_S=4 -e HAMMER_RPM=600 -e SECOND_RPM=60
 */
import http from 'k6/http';
import { env, envNumber, hasRetryAfter, header, isAnthropicError, messages, uniquePrompt } from './lib/claude.js';
import { check, counter, guarded, sampledRate } from './lib/metrics.js';

const MODE = 'k6-rate-limit';
const RPM = Math.max(envNumber('RATE_LIMIT_RPM', 60), 1);
const DURATION_S = Math.min(Math.max(envNumber('DURATION_S', 50), 2), 59);
/** Requests per minute of each key: by default 4 x RPM and RPM / 3. */
const HAMMER_RPM = Math.max(envNumber('HAMMER_RPM', RPM * 4), 1);
const SECOND_RPM = Math.max(envNumber('SECOND_RPM', Math.floor(RPM / 3)), 1);
/** Keys from env may carry hits from an earlier run; generated ones start with a full budget. */
const FRESH_KEYS = env('API_KEY_HAMMER', '') === '';
const MAX_ALLOWED = FRESH_KEYS ? RPM : RPM * 2;

const HAMMER_STATUSES = http.expectedStatuses({ min: 200, max: 299 }, 429);

const hammerLimited = sampledRate('hammer_limited');
const hammerAllowed = counter('hammer_allowed');
const limitedWellFormed = sampledRate('limited_well_formed');
const secondKeySuccess = sampledRate('second_key_success');

/**
 * True when the answer carries the gateway limiter's standard headers (IETF draft-7, as
 * express-rate-limit sends them): `RateLimit: limit=.., remaining=.., reset=..` and `RateLimit-Policy`.
 * @param {import('k6/http').Response} res
 * @returns {boolean}
 */
function hasRateLimitHeaders(res) {
  const value = header(res, 'ratelimit');
  return value !== undefined && /limit=\d+/.test(value) && /remaining=\d+/.test(value) && header(res, 'ratelimit-policy') !== undefined;
}

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    hammer: {
      executor: 'constant-arrival-rate',
      exec: 'hammer',
      rate: HAMMER_RPM,
      timeUnit: '1m',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: Math.max(envNumber('PRE_ALLOCATED_VUS', 10), 1),
      maxVUs: Math.max(envNumber('MAX_VUS', 50), envNumber('PRE_ALLOCATED_VUS', 10)),
      gracefulStop: '10s',
      tags: { key: 'hammer' },
    },
    second: {
      executor: 'constant-arrival-rate',
      exec: 'second',
      rate: SECOND_RPM,
      timeUnit: '1m',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: 2,
      maxVUs: 10,
      gracefulStop: '10s',
      tags: { key: 'second' },
    },
  },
  // guarded(): each threshold also needs samples (no 429 at all fails limited_well_formed).
  thresholds: guarded({
    hammer_limited: ['rate>0.3'],
    hammer_allowed: [`count<=${MAX_ALLOWED}`],
    limited_well_formed: ['rate==1'],
    second_key_success: ['rate>0.99'],
    'http_req_failed{key:second}': ['rate<0.01'],
    'checks{key:second}': ['rate==1'],
    'checks{key:hammer}': ['rate>0.99'],
  }),
};

/**
 * @typedef {object} SetupData
 * @property {string} hammerKey
 * @property {string} secondKey
 */

/** @returns {SetupData} */
export function setup() {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  return {
    hammerKey: env('API_KEY_HAMMER', `k6-rate-limit-hammer-${run}`),
    secondKey: env('API_KEY_SECOND', `k6-rate-limit-second-${run}`),
  };
}

/** @param {SetupData} data */
export function hammer(data) {
  const res = messages(uniquePrompt('rate-limit: hammer'), { apiKey: data.hammerKey, mode: MODE, expect: HAMMER_STATUSES });
  const limited = res.status === 429;
  hammerLimited.add(limited);
  if (res.status === 200) hammerAllowed.add(1);
  check(res, { 'hammer: 200 or 429': (r) => r.status === 200 || r.status === 429 });
  if (limited) {
    const wellFormed = hasRetryAfter(res) && isAnthropicError(res, 'rate_limit_error') && hasRateLimitHeaders(res);
    limitedWellFormed.add(wellFormed);
    check(res, {
      'hammer 429: retry-after': (r) => hasRetryAfter(r),
      'hammer 429: rate_limit_error body': (r) => isAnthropicError(r, 'rate_limit_error'),
      'hammer 429: RateLimit and RateLimit-Policy headers': (r) => hasRateLimitHeaders(r),
    });
  }
}

/** @param {SetupData} data */
export function second(data) {
  const res = messages(uniquePrompt('rate-limit: second key'), { apiKey: data.secondKey, mode: MODE });
  secondKeySuccess.add(res.status === 200);
  check(res, {
    'second key: status 200 while the other key is limited': (r) => r.status === 200,
    'second key: RateLimit headers of its own budget': (r) => hasRateLimitHeaders(r),
  });
}
