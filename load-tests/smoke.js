// @ts-check
/**
 * Smoke test: 1 VU for ~30 s; every iteration calls each endpoint once (messages, streaming
 * messages, count_tokens, models, batch create + retrieve, gateway /metrics) and checks the
 * answers. Any failed check or failed request fails the run.
 *
 *   k6 run load-tests/smoke.js -e GATEWAY_URL=http://127.0.0.1:8080
 */
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import {
  GATEWAY_URL,
  checkBatch,
  checkCountTokens,
  checkMessage,
  checkModels,
  checkStream,
  countTokens,
  createBatch,
  getBatch,
  messages,
  models,
  stream,
  uniquePrompt,
} from './lib/claude.js';

const MODE = 'k6-smoke';

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    smoke: { executor: 'constant-vus', vus: 1, duration: '30s', gracefulStop: '10s' },
  },
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate<0.01'],
  },
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
  group('metrics', () => {
    const res = http.get(`${GATEWAY_URL}/metrics`, { tags: { name: 'GET /metrics' } });
    check(res, {
      'metrics: status 200': (r) => r.status === 200,
      'metrics: prometheus text with http_requests_total': (r) => typeof r.body === 'string' && r.body.includes('http_requests_total'),
    });
  });
  sleep(1);
}
