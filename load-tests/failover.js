// @ts-check
/**
 * Failover under load: steady traffic through a gateway whose UPSTREAMS names a primary (tier 0)
 * and a secondary (tier 1), while the primary is taken down (it stops listening: connections are
 * refused, as from a crashed upstream) and brought back through its mock control endpoint.
 * The client must never see an error: every call is answered, by the secondary while the primary
 * is down, by the primary again once it is back.
 *
 * Scenarios (times relative to test start; all env-configurable):
 *   traffic  constant-arrival-rate RATE/s (default 10) of unique non-streaming messages for the whole run.
 *   chaos    one iteration at OUTAGE_START_S (default 20): POST {PRIMARY_CONTROL_URL}/_mock/script 'down',
 *            sleep OUTAGE_S (default 30), POST 'healthy'.
 * Each traffic request is tagged with the phase its start time falls in:
 *   baseline  [0, OUTAGE_START_S)                                 answered by the primary
 *   moving    [OUTAGE_START_S, + SWITCH_GRACE_S (1))              calls in flight when it went down (not asserted)
 *   outage    [.., OUTAGE_START_S + OUTAGE_S)                      answered by the secondary
 *   healing   [outage end, + BREAKER_RESET_TIMEOUT_MS + HEAL_GRACE_S (2 s))  the primary's breaker may still be open
 *   recovery  [.., + RECOVERY_S (20))                              answered by the primary again
 * Every phase: status 200, no failed request (`http_req_failed` rate==0), and `x-gateway-upstream`
 * on every answer (the bare mock never sends it). Pass the gateway's BREAKER_RESET_TIMEOUT_MS
 * (default 30000): an open breaker lets a probe through only after it.
 *
 * Gateway: UPSTREAMS='[{"name":"primary","url":"<primary>","tier":0},{"name":"secondary","url":"<secondary>","tier":1}]'
 * (names configurable: PRIMARY_NAME, SECONDARY_NAME). A primary that is down refuses connections:
 * moving on from a refused connection sent nothing, so it is free of the gateway's retry budget and
 * the gateway's defaults reach zero client errors. The primary mock needs MOCK_CONTROL_PORT,
 * since its API port is closed while it is down: PRIMARY_CONTROL_URL is that control port.
 *
 *   npm run demo -- --failover --primary-script=healthy    (primary :4010, control :4011, secondary :4012)
 *   k6 run load-tests/failover.js -e GATEWAY_URL=http://127.0.0.1:8080 -e PRIMARY_CONTROL_URL=http://127.0.0.1:4011 -e BREAKER_RESET_TIMEOUT_MS=30000
 */
import exec from 'k6/execution';
import { sleep } from 'k6';
import { env, envNumber, header, messages, mockScript, orElse, uniquePrompt } from './lib/claude.js';
import { check, counter, guarded, sampledRate } from './lib/metrics.js';

const MODE = 'k6-failover';
const RATE = Math.max(envNumber('RATE', 10), 1);
const PRIMARY_CONTROL_URL = env('PRIMARY_CONTROL_URL', 'http://127.0.0.1:4011').replace(/\/+$/, '');
const PRIMARY = env('PRIMARY_NAME', 'primary');
const SECONDARY = env('SECONDARY_NAME', 'secondary');
const OUTAGE_START_S = Math.max(envNumber('OUTAGE_START_S', 20), 1);
const OUTAGE_S = Math.max(envNumber('OUTAGE_S', 30), 1);
const SWITCH_GRACE_S = Math.min(Math.max(envNumber('SWITCH_GRACE_S', 1), 0), OUTAGE_S / 2);
const RESET_S = Math.max(envNumber('BREAKER_RESET_TIMEOUT_MS', 30000), 0) / 1000;
const HEAL_GRACE_S = Math.max(envNumber('HEAL_GRACE_S', 2), 0);
const RECOVERY_S = Math.max(envNumber('RECOVERY_S', 20), 1);
const OUTAGE_END_S = OUTAGE_START_S + OUTAGE_S;
const RECOVERY_START_S = OUTAGE_END_S + RESET_S + HEAL_GRACE_S;
const TOTAL_S = Math.ceil(RECOVERY_START_S + RECOVERY_S);
const PRE_ALLOCATED_VUS = Math.max(envNumber('PRE_ALLOCATED_VUS', Math.max(RATE * 2, 10)), 1);

const servedByPrimary = counter('served_by_primary');
const servedBySecondary = counter('served_by_secondary');
const baselineFromPrimary = sampledRate('baseline_from_primary');
const outageFromSecondary = sampledRate('outage_from_secondary');
const recoveryFromPrimary = sampledRate('recovery_from_primary');

/** Failed answers this VU printed so far. */
let reported = 0;

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
    // Zero client errors, whichever upstream was up.
    'http_req_failed{scenario:traffic}': ['rate==0'],
    'checks{phase:answer}': ['rate==1'],
    'checks{phase:chaos}': ['rate==1'],
    // Both upstreams served, each in its phase.
    served_by_primary: ['count>0'],
    served_by_secondary: ['count>0'],
    baseline_from_primary: ['rate>0.95'],
    outage_from_secondary: ['rate>0.95'],
    recovery_from_primary: ['rate>0.9'],
  }),
};

/**
 * @param {number} elapsedS seconds since the test started
 * @returns {'baseline' | 'moving' | 'outage' | 'healing' | 'recovery'}
 */
function phaseAt(elapsedS) {
  if (elapsedS < OUTAGE_START_S) return 'baseline';
  if (elapsedS < OUTAGE_START_S + SWITCH_GRACE_S) return 'moving';
  if (elapsedS < OUTAGE_END_S) return 'outage';
  if (elapsedS < RECOVERY_START_S) return 'healing';
  return 'recovery';
}

export function setup() {
  check(mockScript(PRIMARY_CONTROL_URL, 'healthy'), { 'setup: the primary is healthy': (ok) => ok }, { phase: 'chaos' });
  return {};
}

export function traffic() {
  // The traffic scenario starts at 0s, so its start time is the test's.
  const phase = phaseAt((Date.now() - exec.scenario.startTime) / 1000);
  const res = messages(uniquePrompt('failover: reply ok'), { mode: MODE, tags: { phase }, timeout: '30s' });
  const upstream = orElse(header(res, 'x-gateway-upstream'), '');
  if (upstream === PRIMARY) servedByPrimary.add(1, { phase });
  if (upstream === SECONDARY) servedBySecondary.add(1, { phase });
  check(
    res,
    {
      'answer: status 200': (r) => r.status === 200,
      'answer: x-gateway-upstream names a configured upstream': () => upstream === PRIMARY || upstream === SECONDARY,
    },
    { phase: 'answer' },
  );
  if (res.status !== 200 && reported < 5) {
    // What the client got, for the run's output (a few per VU, so a bad run stays readable).
    reported++;
    console.warn(`failover: ${phase}: status ${res.status} from ${upstream === '' ? '(no x-gateway-upstream)' : upstream}: ${String(res.body).slice(0, 300)}`);
  }
  if (phase === 'baseline') baselineFromPrimary.add(upstream === PRIMARY, { phase });
  else if (phase === 'outage') outageFromSecondary.add(upstream === SECONDARY, { phase });
  else if (phase === 'recovery') recoveryFromPrimary.add(upstream === PRIMARY, { phase });
}

export function chaos() {
  const tags = { phase: 'chaos' };
  check(mockScript(PRIMARY_CONTROL_URL, 'down'), { 'chaos: the primary went down': (ok) => ok }, tags);
  sleep(OUTAGE_S);
  check(mockScript(PRIMARY_CONTROL_URL, 'healthy'), { 'chaos: the primary is back': (ok) => ok }, tags);
}

export function teardown() {
  // Never leave the primary down, even when the chaos iteration was interrupted.
  mockScript(PRIMARY_CONTROL_URL, 'healthy');
}
