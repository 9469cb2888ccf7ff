// @ts-check
/**
 * Stress: open-model load with ramping-arrival-rate, from START_RPS (10) to a peak of PEAK_RPS
 * (default 150) iterations per second, served by PRE_ALLOCATED_VUS (50) and at most MAX_VUS (150)
 * VUs: WARMUP_S (30) to PEAK_RPS/3, RAMP_S (60) to the peak, HOLD_S (60), COOLDOWN_S (30) to 0.
 * Traffic mix: 60% messages, 25% streaming, 15% count_tokens; unique prompts. k6 reports
 * `dropped_iterations` when 150 VUs cannot keep up with the target rate.
 *
 *   k6 run load-tests/stress.js -e GATEWAY_URL=http://127.0.0.1:8080
 *   docker compose --profile load run --rm k6 run /scripts/stress.js
 */
import {
  checkCountTokens,
  checkGatewayCounted,
  checkMessage,
  checkStream,
  countTokens,
  envNumber,
  envSeconds,
  messages,
  stream,
  uniquePrompt,
} from './lib/claude.js';
import { guarded } from './lib/metrics.js';

const MODE = 'k6-stress';
const PEAK_RPS = Math.max(envNumber('PEAK_RPS', 150), 1);
const START_RPS = Math.max(envNumber('START_RPS', 10), 0);
const PRE_ALLOCATED_VUS = Math.max(envNumber('PRE_ALLOCATED_VUS', 50), 1);
const MAX_VUS = Math.max(envNumber('MAX_VUS', 150), PRE_ALLOCATED_VUS);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: START_RPS,
      timeUnit: '1s',
      preAllocatedVUs: PRE_ALLOCATED_VUS,
      maxVUs: MAX_VUS,
      stages: [
        { target: Math.ceil(PEAK_RPS / 3), duration: envSeconds('WARMUP_S', 30) },
        { target: PEAK_RPS, duration: envSeconds('RAMP_S', 60) },
        { target: PEAK_RPS, duration: envSeconds('HOLD_S', 60) },
        { target: 0, duration: envSeconds('COOLDOWN_S', 30) },
      ],
      gracefulStop: '20s',
    },
  },
  // guarded(): each threshold also needs samples. Every check includes "served by the gateway".
  thresholds: guarded({
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '30s' }],
    checks: ['rate>0.99'],
    http_req_duration: ['p(95)<1500', 'p(99)<3000'],
    'http_req_duration{name:POST /v1/messages}': ['p(95)<1500', 'p(99)<3000'],
    'http_req_duration{name:POST /v1/messages (stream)}': ['p(95)<3000', 'p(99)<5000'],
  }),
};

export default function () {
  const pick = Math.random();
  if (pick < 0.6) {
    checkMessage(messages(uniquePrompt('stress: answer briefly'), { mode: MODE }));
  } else if (pick < 0.85) {
    checkStream(stream(uniquePrompt('stress: stream briefly'), { mode: MODE }));
  } else {
    checkCountTokens(countTokens(uniquePrompt('stress: count'), { mode: MODE }));
  }
}

export function teardown() {
  checkGatewayCounted(MODE);
}
