// @ts-check
/**
 * Circuit-breaker chaos test: an upstream outage (every call answered 529 overloaded) injected
 * through the mock's global fault plan while steady traffic flows through the gateway.
 *
 * Scenarios (times relative to test start; all env-configurable):
 *   traffic  constant-arrival-rate RATE/s (default 10) of unique non-streaming messages for the whole run.
 *   chaos    one iteration at OUTAGE_START_S (default 20): POST {MOCK}/_mock/faults {"status":529},
 *            sleep OUTAGE_S (default 30), POST null to clear it.
 * The suite's short run (test/integration/k6.test.ts) uses a gateway with BREAKER_WINDOW_MS=1000,
 * BREAKER_RESET_TIMEOUT_MS=1000 and -e RATE=20 -e OUTAGE_START_S=1 -e OUTAGE_S=2.5 -e TRIP_GRACE_S=1
 * -e HEAL_GRACE_S=0.5 -e RECOVERY_S=1.5 (about 7 s).
 *
 * Each traffic request is tagged with the phase its start time falls in:
 *   baseline  [0, OUTAGE_START_S)                          everything succeeds
 *   tripping  [OUTAGE_START_S, +TRIP_GRACE_S)               529s accumulate until the breaker opens (not asserted);
 *             TRIP_GRACE_S defaults to BREAKER_WINDOW_MS x BREAKER_ERROR_THRESHOLD % + 2 s (7 s with
 *             the gateway defaults): the rolling window still holds the baseline's successes
 *   outage    [.. , OUTAGE_START_S + OUTAGE_S)               breaker open: 503 + retry-after + overloaded_error, fast
 *   healing   [outage end, + BREAKER_RESET_TIMEOUT_MS + HEAL_GRACE_S (3 s))  waiting for the half-open probe (not asserted)
 *   recovery  [.., + RECOVERY_S (20))                        successes again
 * An open breaker half-opens after BREAKER_RESET_TIMEOUT_MS and closes on the first successful
 * probe after the outage ends, so the script must know the gateway's reset timeout: pass the same
 * BREAKER_RESET_TIMEOUT_MS to both (gateway default 30000; 5000 makes the run ~80 s).
 *
 * Gateway env: BREAKER=true (default), BREAKER_VOLUME_THRESHOLD <= ~RATE (default 10),
 * BREAKER_ERROR_THRESHOLD (default 50), BREAKER_WINDOW_MS (default 10000) and
 * BREAKER_RESET_TIMEOUT_MS (default 30000) - give the script the same three values -, and
 * RETRY_ON_OVERLOADED=false (default: 529s are not retried, each counts as one failure).
 *
 *   k6 run load-tests/breaker-chaos.js -e GATEWAY_URL=http://127.0.0.1:8080 -e MOCK_URL=http://127.0.0.1:4010 -e BREAKER_RESET_TIMEOUT_MS=5000
 */
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { envNumber, hasRetryAfter, header, isAnthropicError, messages, mockFaults, orElse, uniquePrompt } from './lib/claude.js';
import { check, counter, guarded, sampledRate, sampledTrend } from './lib/metrics.js';

const MODE = 'k6-breaker-chaos';
const RATE = Math.max(envNumber('RATE', 10), 1);
const OUTAGE_START_S = Math.max(envNumber('OUTAGE_START_S', 20), 1);
const OUTAGE_S = Math.max(envNumber('OUTAGE_S', 30), 2);
// The breaker opens once failures reach BREAKER_ERROR_THRESHOLD % of its rolling BREAKER_WINDOW_MS
// window, which still holds the baseline's successes: at a steady rate that takes about
// window x threshold (5 s with the gateway defaults). Pass the gateway's values, or TRIP_GRACE_S.
const WINDOW_S = Math.max(envNumber('BREAKER_WINDOW_MS', 10000), 0) / 1000;
const ERROR_THRESHOLD = Math.min(Math.max(envNumber('BREAKER_ERROR_THRESHOLD', 50), 1), 100) / 100;
const TRIP_GRACE_S = Math.min(Math.max(envNumber('TRIP_GRACE_S', Math.ceil(WINDOW_S * ERROR_THRESHOLD) + 2), 0.5), OUTAGE_S - 1);
const RESET_S = Math.max(envNumber('BREAKER_RESET_TIMEOUT_MS', 30000), 0) / 1000;
const HEAL_GRACE_S = Math.max(envNumber('HEAL_GRACE_S', 3), 0);
const RECOVERY_S = Math.max(envNumber('RECOVERY_S', 20), 1);
/** The breaker's fast answer must take less than this at p95 (ms). */
const FAST_FAIL_P95_MS = Math.max(envNumber('FAST_FAIL_P95_MS', 50), 1);
const OUTAGE_END_S = OUTAGE_START_S + OUTAGE_S;
const RECOVERY_START_S = OUTAGE_END_S + RESET_S + HEAL_GRACE_S;
const TOTAL_S = Math.ceil(RECOVERY_START_S + RECOVERY_S);
/** VUs for the traffic scenario (k6 starts more, up to MAX_VUS, when answers are slow). */
const PRE_ALLOCATED_VUS = Math.max(envNumber('PRE_ALLOCATED_VUS', Math.max(RATE * 2, 10)), 1);

/** 503/529 are the expected answers while the upstream is down; they are not "failed requests". */
const OUTAGE_STATUSES = http.expectedStatuses({ min: 200, max: 299 }, 503, 529);

const fastFailDuration = sampledTrend('fast_fail_duration', true);
const breakerRejections = counter('breaker_rejections');
const outageFastFail = sampledRate('outage_fast_fail');
const baselineSuccess = sampledRate('baseline_success');
const recoverySuccess = sampledRate('recovery_success');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    traffic: {
      executor: 'constant-arrival-rate',
      exec: 'traffic',
      rate: RATE,
      timeUnit: '1s',
      duration: `${TOTAL_S}s`,
      preAllocatedVUs: PRE_ALLOCATED_VUS,
      maxVUs: Math.max(envNumber('MAX_VUS', Math.max(RATE * 5, 50)), PRE_ALLOCATED_VUS),
      gracefulStop: '10s',
    },
    chaos: {
      executor: 'per-vu-iterations',
      exec: 'chaos',
      vus: 1,
      iterations: 1,
      startTime: `${OUTAGE_START_S}s`,
      maxDuration: `${OUTAGE_S + 30}s`,
      gracefulStop: '10s',
    },
  },
  // guarded(): each threshold also needs samples (a phase that saw no request fails).
  thresholds: guarded({
    // The gateway fails fast while the breaker is open.
    fast_fail_duration: [`p(95)<${FAST_FAIL_P95_MS}`],
    breaker_rejections: ['count>0'],
    outage_fast_fail: ['rate>0.8'],
    // Healthy before, healthy again after.
    baseline_success: ['rate>0.99'],
    recovery_success: ['rate>0.95'],
    'http_req_failed{phase:baseline}': ['rate<0.01'],
    'http_req_failed{phase:recovery}': ['rate<0.05'],
    'checks{phase:chaos}': ['rate==1'],
    'checks{phase:outage}': ['rate>0.95'],
  }),
};

/**
 * @param {number} elapsedS seconds since the test started
 * @returns {'baseline' | 'tripping' | 'outage' | 'healing' | 'recovery'}
 */
function phaseAt(elapsedS) {
  if (elapsedS < OUTAGE_START_S) return 'baseline';
  if (elapsedS < OUTAGE_START_S + TRIP_GRACE_S) return 'tripping';
  if (elapsedS < OUTAGE_END_S) return 'outage';
  if (elapsedS < RECOVERY_START_S) return 'healing';
  return 'recovery';
}

export function setup() {
  const cleared = mockFaults(null);
  check(cleared, { 'setup: mock fault plan cleared': (ok) => ok }, { phase: 'chaos' });
  return {};
}

export function traffic() {
  // The traffic scenario starts at 0s, so its start time is the test's.
  const phase = phaseAt((Date.now() - exec.scenario.startTime) / 1000);
  const tags = { phase };
  /** @type {import('./lib/claude.js').CallOptions} */
  const opts = { mode: MODE, tags, timeout: '30s' };
  if (phase !== 'baseline' && phase !== 'recovery') opts.expect = OUTAGE_STATUSES;
  const res = messages(uniquePrompt('breaker-chaos: reply ok'), opts);

  // The breaker's own answer: overloaded (503 today; 529 as the API answers is accepted too), with
  // retry-after, raised by the gateway itself: it carries no request-id of the mock's (`req_mock_`),
  // which every answer from the mock, a half-open probe's 529 included, has.
  const fromMock = orElse(header(res, 'request-id'), '').indexOf('req_mock_') === 0;
  const rejected = (res.status === 503 || res.status === 529) && !fromMock && hasRetryAfter(res) && isAnthropicError(res, 'overloaded_error');
  if (rejected) {
    breakerRejections.add(1, tags);
    fastFailDuration.add(res.timings.duration, tags);
  }

  if (phase === 'baseline') {
    baselineSuccess.add(res.status === 200, tags);
    check(res, { 'baseline: status 200': (r) => r.status === 200 }, tags);
  } else if (phase === 'outage') {
    outageFastFail.add(rejected, tags);
    check(
      res,
      {
        // Half-open probes reach the mock and come back as its 529.
        'outage: 503 from the breaker or 529 from a probe': (r) => r.status === 503 || r.status === 529,
        'outage: a gateway answer carries retry-after and overloaded_error': () => fromMock || rejected,
      },
      tags,
    );
  } else if (phase === 'recovery') {
    recoverySuccess.add(res.status === 200, tags);
    check(res, { 'recovery: status 200': (r) => r.status === 200 }, tags);
  }
}

export function chaos() {
  const tags = { phase: 'chaos' };
  const down = mockFaults({ status: 529 });
  check(down, { 'chaos: outage injected (529 for every call)': (ok) => ok }, tags);
  sleep(OUTAGE_S);
  const up = mockFaults(null);
  check(up, { 'chaos: outage cleared': (ok) => ok }, tags);
}

export function teardown() {
  // Never leave the mock failing, even when the chaos iteration was interrupted.
  mockFaults(null);
}
