// @ts-check
/**
 * Basic load: a constant 15 VUs (override with -e VUS=..) for DURATION_S (default 120 s), mixing every endpoint in
 * roughly production proportions: 50% messages, 25% streaming messages, 15% count_tokens,
 * 7% models, 3% batch create + retrieve. Prompts are unique, so coalescing does not hide upstream
 * load. Thresholds bound p95 latency per endpoint and the error rate; every answer must come from
 * the gateway (`x-gateway-coalesce-role`) and its /metrics must count the calls.
 *
 *   k6 run load-tests/basic.js -e GATEWAY_URL=http://127.0.0.1:8080
 */
import { group, sleep } from 'k6';
import {
  checkBatch,
  checkGatewayCounted,
  checkCountTokens,
  checkMessage,
  checkModels,
  checkStream,
  countTokens,
  createBatch,
  envNumber,
  envSeconds,
  getBatch,
  messages,
  models,
  stream,
  uniquePrompt,
} from './lib/claude.js';
import { guarded } from './lib/metrics.js';

const MODE = 'k6-basic';
const VUS = Math.min(Math.max(envNumber('VUS', 15), 1), 20);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    mixed: { executor: 'constant-vus', vus: VUS, duration: envSeconds('DURATION_S', 120), gracefulStop: '15s' },
  },
  // guarded(): each threshold also needs samples. Every check includes "served by the gateway".
  thresholds: guarded({
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    http_req_duration: ['p(95)<1000'],
    'http_req_duration{name:POST /v1/messages}': ['p(95)<1000'],
    'http_req_duration{name:POST /v1/messages (stream)}': ['p(95)<3000'],
    'http_req_duration{name:POST /v1/messages/count_tokens}': ['p(95)<300'],
    'http_req_duration{name:GET /v1/models}': ['p(95)<300'],
  }),
};

export default function () {
  const pick = Math.random();
  if (pick < 0.5) {
    group('messages', () => {
      checkMessage(messages(uniquePrompt('basic: summarize'), { mode: MODE }));
    });
  } else if (pick < 0.75) {
    group('messages stream', () => {
      checkStream(stream(uniquePrompt('basic: stream a story'), { mode: MODE }));
    });
  } else if (pick < 0.9) {
    group('count_tokens', () => {
      checkCountTokens(countTokens(uniquePrompt('basic: count me'), { mode: MODE }));
    });
  } else if (pick < 0.97) {
    group('models', () => {
      checkModels(models({ mode: MODE }));
    });
  } else {
    group('batches', () => {
      const id = checkBatch(createBatch([uniquePrompt('basic: batch')], { mode: MODE }), 'create');
      if (id !== '') checkBatch(getBatch(id, { mode: MODE }), 'get');
    });
  }
  sleep(0.2 + Math.random() * 0.3);
}

export function teardown() {
  checkGatewayCounted(MODE);
}
