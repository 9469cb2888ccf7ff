// @ts-check
/**
 * Request coalescing under bursts of identical prompts.
 *
 * VUS (default 30) VUs each run BURSTS (default 20) iterations. Every iteration sleeps until the
 * next WINDOW_MS (default 1000 ms) boundary of the wall clock and then sends the prompt keyed by
 * that window (`coalesce <run> burst <window>`), so all VUs fire the same prompt within a few ms
 * of one another. `x-mock-latency-ms: LATENCY_MS` (default 300) holds the mock's answer, keeping
 * the leader's flight open while the rest of the burst arrives; `x-gateway-cache: off` keeps the
 * response cache (if enabled) out of the measurement. All VUs share one API key: the coalescing
 * fingerprint includes the tenant.
 *
 * Per response the `x-gateway-coalesce-role` header is counted:
 *   coalesce_leader / coalesce_follower / coalesce_bypass / coalesce_unlabelled (Counters)
 *   coalesced_rate (Rate) = followers / all answered requests, threshold rate>0.5
 *   (a perfectly aligned burst of 30 gives 29/30).
 *
 * setup() resets the mock (counters, fault plan). teardown() reads GET {MOCK}/_mock/stats and
 * checks, tagged phase:verify (threshold checks{phase:verify} rate==1):
 *   1. the stats are readable and upstream `POST /v1/messages` calls >= 1;
 *   2. upstream calls <= MAX_UPSTREAM_RATIO (default 0.2) x requests sent (VUS x BURSTS):
 *      "far below the number of requests";
 *   3. upstream calls <= windows spanned by the run + ALIGN_SLACK (default 2).
 * What is exact and what is not: each distinct prompt costs at least one upstream call, and costs
 * exactly one when every request for it arrives while its leader's flight is still open (within
 * LATENCY_MS of the first). Prompts are keyed by window, so distinct prompts <= windows spanned
 * (setup to teardown). "upstream calls == distinct prompts" therefore holds only when each burst
 * lands inside one flight; a VU whose timer fires late (> LATENCY_MS after the boundary) opens a
 * second flight for the same prompt, which check 3 tolerates up to ALIGN_SLACK times. The mock's
 * counters are global: run this against a mock no other traffic is using.
 *
 *   k6 run load-tests/coalescing.js -e GATEWAY_URL=http://127.0.0.1:8080 -e MOCK_URL=http://127.0.0.1:4010
 */
import { sleep } from 'k6';
import { checkMessage, coalesceRole, envNumber, messages, mockReset, mockStats, orElse } from './lib/claude.js';
import { check, counter, guarded, sampledRate } from './lib/metrics.js';

const MODE = 'k6-coalescing';
const VUS = Math.max(envNumber('VUS', 30), 2);
const BURSTS = Math.max(envNumber('BURSTS', 20), 1);
const WINDOW_MS = Math.max(envNumber('WINDOW_MS', 1000), 100);
const LATENCY_MS = Math.max(envNumber('LATENCY_MS', 300), 0);
const MAX_UPSTREAM_RATIO = envNumber('MAX_UPSTREAM_RATIO', 0.2);
const ALIGN_SLACK = Math.max(envNumber('ALIGN_SLACK', 2), 0);

const leaders = counter('coalesce_leader');
const followers = counter('coalesce_follower');
const bypassed = counter('coalesce_bypass');
const unlabelled = counter('coalesce_unlabelled');
const coalescedRate = sampledRate('coalesced_rate');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    bursts: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: BURSTS,
      maxDuration: `${Math.ceil((BURSTS * WINDOW_MS) / 1000) + 60}s`,
      gracefulStop: '10s',
    },
  },
  // guarded(): each threshold also needs samples (a run that sent nothing fails).
  thresholds: guarded({
    coalesced_rate: ['rate>0.5'],
    coalesce_follower: ['count>0'],
    http_req_failed: ['rate<0.01'],
    'checks{phase:burst}': ['rate>0.99'],
    'checks{phase:verify}': ['rate==1'],
  }),
};

/**
 * @typedef {object} SetupData
 * @property {string} runId distinguishes this run's prompts from any earlier run's
 * @property {number} startedAt
 * @property {boolean} reset
 */

/** @returns {SetupData} */
export function setup() {
  const reset = mockReset();
  check(reset, { 'setup: mock reset': (ok) => ok }, { phase: 'verify' });
  return { runId: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, startedAt: Date.now(), reset };
}

/** @param {SetupData} data */
export default function (data) {
  // Align to the next window boundary: every VU picks the same window, hence the same prompt.
  const target = Math.floor(Date.now() / WINDOW_MS) + 1;
  const wait = target * WINDOW_MS - Date.now();
  if (wait > 0) sleep(wait / 1000);

  const res = messages(`coalesce ${data.runId} burst ${target}: what is the capital of France?`, {
    mode: MODE,
    headers: { 'x-mock-latency-ms': String(LATENCY_MS), 'x-gateway-cache': 'off' },
    tags: { phase: 'burst' },
  });
  checkMessage(res, { phase: 'burst' });
  if (res.status !== 200) return;

  const role = coalesceRole(res);
  check(role, { 'role header is leader|follower|bypass': (r) => r === 'leader' || r === 'follower' || r === 'bypass' }, { phase: 'burst' });
  if (role === 'leader') leaders.add(1);
  else if (role === 'follower') followers.add(1);
  else if (role === 'bypass') bypassed.add(1);
  else unlabelled.add(1);
  coalescedRate.add(role === 'follower');
}

/** @param {SetupData} data */
export function teardown(data) {
  const stats = mockStats();
  const upstream = stats === undefined ? 0 : orElse(stats.byPath['POST /v1/messages'], 0);
  const requests = VUS * BURSTS;
  const windowsSpanned = Math.floor(Date.now() / WINDOW_MS) - Math.floor(data.startedAt / WINDOW_MS) + 1;
  console.log(
    `coalescing: requests sent=${requests}, upstream POST /v1/messages=${upstream}, ` +
      `windows spanned=${windowsSpanned} (>= distinct prompts), bursts per VU=${BURSTS}, ` +
      `upstream/requests=${(upstream / requests).toFixed(3)}`,
  );
  check(stats, { 'verify: mock stats readable': (s) => s !== undefined }, { phase: 'verify' });
  check(
    upstream,
    {
      'verify: upstream calls >= 1': (u) => u >= 1,
      [`verify: upstream calls <= ${MAX_UPSTREAM_RATIO} x requests`]: (u) => u <= requests * MAX_UPSTREAM_RATIO,
      [`verify: upstream calls <= windows spanned + ${ALIGN_SLACK}`]: (u) => u <= windowsSpanned + ALIGN_SLACK,
    },
    { phase: 'verify' },
  );
}
