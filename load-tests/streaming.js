// @ts-check
/**
 * Streaming (SSE): 20 VUs for 2 minutes send `"stream": true` messages with unique prompts. Every
 * answer must be `text/event-stream` whose last event is `message_stop` (k6 buffers the body, so
 * a stream cut mid-way fails the check). Custom metrics:
 *   - time_to_first_byte (Trend, ms) = res.timings.waiting: how soon the gateway starts the stream.
 *   - stream_completed (Rate): share of answers that reached message_stop.
 *   - stream_events (Trend): SSE events per answer.
 * The mock's event pacing is set per request with `x-mock-event-interval-ms` (-e EVENT_INTERVAL_MS,
 * default 10).
 *
 *   k6 run load-tests/streaming.js -e GATEWAY_URL=http://127.0.0.1:8080
 */
import { sleep } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { bodyText, checkStream, envNumber, sseEvents, stream, streamCompleted, uniquePrompt } from './lib/claude.js';

const MODE = 'k6-streaming';
const EVENT_INTERVAL_MS = envNumber('EVENT_INTERVAL_MS', 10);

const timeToFirstByte = new Trend('time_to_first_byte', true);
const streamCompletedRate = new Rate('stream_completed');
const streamEvents = new Trend('stream_events');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    sse: { executor: 'constant-vus', vus: envNumber('VUS', 20), duration: '2m', gracefulStop: '20s' },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    stream_completed: ['rate>0.99'],
    time_to_first_byte: ['p(95)<500', 'p(99)<1000'],
    'http_req_duration{name:POST /v1/messages (stream)}': ['p(95)<5000'],
  },
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
