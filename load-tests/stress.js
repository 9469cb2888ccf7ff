// @ts-check
/**
 * Stress: open-model load with ramping-arrival-rate, from 10 to a peak of PEAK_RPS (default 150)
 * iterations per second, served by 50 pre-allocated and at most 150 VUs, ~3.5 minutes in all.
 * Traffic mix: 60% messages, 25% streaming, 15% count_tokens; unique prompts. k6 reports
 * `dropped_iterations` when 150 VUs cannot keep up with the target rate.
 *
 *   k6 run load-tests/stress.js -e GATEWAY_URL=http://127.0.0.1:8080
 *   docker compose --profile load run --rm k6 run /scripts/stress.js
 */
import {
  checkCountTokens,
  checkMessage,
  checkStream,
  countTokens,
  envNumber,
  messages,
  stream,
  uniquePrompt,
} from './lib/claude.js';

const MODE = 'k6-stress';
const PEAK_RPS = Math.max(envNumber('PEAK_RPS', 150), 1);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: 150,
      stages: [
        { target: Math.ceil(PEAK_RPS / 3), duration: '30s' },
        { target: PEAK_RPS, duration: '60s' },
        { target: PEAK_RPS, duration: '60s' },
        { target: 0, duration: '30s' },
      ],
      gracefulStop: '20s',
    },
  },
  thresholds: {
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '30s' }],
    checks: ['rate>0.99'],
    http_req_duration: ['p(95)<1500', 'p(99)<3000'],
    'http_req_duration{name:POST /v1/messages}': ['p(95)<1500', 'p(99)<3000'],
    'http_req_duration{name:POST /v1/messages (stream)}': ['p(95)<3000', 'p(99)<5000'],
  },
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
