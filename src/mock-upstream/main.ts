import { createMockUpstream } from './server.js';

/** `npm run mock`: the mock Anthropic API as a process (demo, load tests, docker-compose). */
function envNumber(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > max) {
    process.stderr.write(`mock-upstream: ${name} must be a whole number from 0 to ${max}\n`);
    process.exit(1);
  }
  return Number(raw);
}

const publicUrl = process.env.MOCK_PUBLIC_URL?.trim();
if (publicUrl !== undefined && publicUrl !== '' && !/^https?:\/\/[^/]+(\/.*[^/])?$/.test(publicUrl)) {
  process.stderr.write('mock-upstream: MOCK_PUBLIC_URL must be an absolute http(s) URL without a trailing slash\n');
  process.exit(1);
}

const mock = await createMockUpstream({
  port: envNumber('MOCK_PORT', 4010, 65535),
  host: process.env.MOCK_HOST?.trim() || '127.0.0.1',
  latencyMs: envNumber('MOCK_LATENCY_MS', 0, 600_000),
  eventIntervalMs: envNumber('MOCK_EVENT_INTERVAL_MS', 0, 60_000),
  ...(publicUrl ? { publicUrl } : {}),
});
process.stdout.write(`${JSON.stringify({ level: 'info', service: 'mock-upstream', url: mock.url, msg: 'mock Anthropic API listening' })}\n`);
const stop = (): void => {
  void mock.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
