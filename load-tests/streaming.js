// @ts-check
/**
 * Streaming (SSE): VUS (default 20) VUs for DURATION_S (default 120 s) send `"stream": true` messages with unique prompts. Every
 * answer must be `text/event-stream` whose last event is `message_stop` (k6 buffers the body, so
 * a stream cut mid-way fails the check) and come from the gateway (`x-gateway-coalesce-role`);
 * the gateway's /metrics must count the calls. Custom metrics:
 *   - time_to_first_byte (Trend, ms) = res.timings.waiting: how soon the gateway starts the stream.
 *   - stream_completed (Rate): share of answers that reached message_stop.
 *   - stream_events (Trend): SSE events per answer.
 * The mock's event pacing is set per request with `x-mock-event-interval-ms` (-e EVENT_INTERVAL_MS,
 * default 10).
 *
 *   k6 run load-tests/streaming.js -e GATEWAY_URL=http://127.0.0.1:8080
 */
import { sleep } from 'k6';
import { bodyText, checkGatewayCounted, checkStream, envNumber, envSeconds, sseEvents, stream, streamCompleted, uniquePrompt } from './lib/claude.js';
import { guarded, sampledRate, sampledTrend } from './lib/metrics.js';

const MODE = 'k6-streaming';
const EVENT_INTERVAL_MS = envNumber('EVENT_INTERVAL_MS', 10);

const timeToFirstByte = sampledTrend('time_to_first_byte', true);
const streamCompletedRate = sampledRate('stream_completed');
const streamEvents = sampledTrend('stream_events');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    sse: { executor: 'constant-vus', vus: Math.max(envNumber('VUS', 20), 1), duration: envSeconds('DURATION_S', 120), gracefulStop: '20s' },
  },
  // guarded(): each threshold also needs samples. checkStream includes "served by the gateway".
  thresholds: guarded({
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    stream_completed: ['rate>0.99'],
    time_to_first_byte: ['p(95)<500', 'p(99)<1000'],
    'http_req_duration{name:POST /v1/messages (stream)}': ['p(95)<5000'],
  }),
};

export default function () {
  const res = stream(uniquePrompt('streaming: tell a short story'), {
    mode: MODE,
    headers: { 'x-mock-event-interval-ms': String(EVENT_INTERVAL_MS) },
    timeout: '60s',
  });
  checkStream(res);
  const completed = streamCompleted(res);
  streamCompletedRate.add(completed);
  if (res.status === 200) {
    timeToFirstByte.add(res.timings.waiting);
    streamEvents.add(sseEvents(bodyText(res)).length);
  }
  sleep(0.2);
}

export function teardown() {
  checkGatewayCounted(MODE);
}
