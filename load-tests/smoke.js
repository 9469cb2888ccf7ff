// @ts-check
/**
 * Smoke test: VUS (default 1) VUs for DURATION_S (default 30 s); every iteration calls each
 * endpoint once (messages, streaming messages, count_tokens, models, batch create + retrieve) and
 * checks the answers, including that the gateway served them (`x-gateway-coalesce-role`). The
 * teardown checks the gateway's /metrics counted this script's calls. Any failed check or failed
 * request fails the run; so does a run that made no check or request (see lib/metrics.js).
 *
 *   k6 run load-tests/smoke.js -e GATEWAY_URL=http://127.0.0.1:8080
 *   k6 run load-tests/smoke.js -e DURATION_S=3 -e PAUSE_S=0.2     # the suite's short run
 */
import { group, sleep } from 'k6';
import {
  checkBatch,
  checkCountTokens,
  checkGatewayCounted,
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

const MODE = 'k6-smoke';
const PAUSE_S = Math.max(envNumber('PAUSE_S', 1), 0);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    smoke: {
      executor: 'constant-vus',
      vus: Math.min(Math.max(envNumber('VUS', 1), 1), 50),
      duration: envSeconds('DURATION_S', 30),
      gracefulStop: '10s',
    },
  },
  thresholds: guarded({
    checks: ['rate==1'],
    http_req_failed: ['rate<0.01'],
  }),
};

export default function () {
  group('messages', () => {
    checkMessage(messages(uniquePrompt('smoke: say hi'), { mode: MODE }));
  });
  group('messages stream', () => {
    checkStream(stream(uniquePrompt('smoke: stream hi'), { mode: MODE }));
  });
  group('count_tokens', () => {
    checkCountTokens(countTokens('smoke: how many tokens is this?', { mode: MODE }));
  });
  group('models', () => {
    checkModels(models({ mode: MODE }));
  });
  group('batches', () => {
    const id = checkBatch(createBatch([uniquePrompt('smoke: batch a'), uniquePrompt('smoke: batch b')], { mode: MODE }), 'create');
    if (id !== '') checkBatch(getBatch(id, { mode: MODE }), 'get');
  });
  sleep(PAUSE_S);
}

export function teardown() {
  checkGatewayCounted(MODE);
}
