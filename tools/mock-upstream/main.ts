import { MOCK_KINDS, type MockKind } from './providers.js';
import { createMockUpstream, type MockUpstreamOptions } from './server.js';
import { parseScript, validateScript } from './script.js';

/**
 * `npm run mock`: the mock Anthropic API as a process (demo, load tests, docker-compose).
 * Env: MOCK_PORT (4010), MOCK_HOST (127.0.0.1), MOCK_LATENCY_MS (0), MOCK_EVENT_INTERVAL_MS (0),
 * MOCK_PUBLIC_URL (its own url), MOCK_HTTP2 (off; on = also prior-knowledge h2c on the same port),
 * MOCK_SCRIPT (a failure script, script.ts shorthand or JSON, e.g. `healthy:20s,down:10s,repeat`),
 * MOCK_CONTROL_PORT (unset; a port serving only /_mock/*, reachable while the script keeps the API port down).
 * MOCK_KIND (anthropic | bedrock | vertex), MOCK_REGION (bedrock us-east-1, vertex us-east5),
 * MOCK_VERTEX_PROJECT (test-project), MOCK_BEDROCK_KEYS (`ACCESS_KEY_ID:SECRET,...` that verify),
 * MOCK_BEARER_TOKENS (comma-separated: Bedrock API keys, or Vertex access tokens, accepted as bearers). A bad value names its variable and exits 1; SIGTERM/SIGINT close and exit 0.
 */

function fail(message: string): never {
  process.stderr.write(`mock-upstream: ${message}\n`);
  process.exit(1);
}

function envInteger(name: string, fallback: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) fail(`${name} must be a whole number from 0 to ${max} (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

function envHost(name: string, fallback: string): string {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^[A-Za-z0-9.:_-]+$/.test(raw)) fail(`${name} must be a host name or IP address (got ${JSON.stringify(raw)})`);
  return raw;
}

function envUrl(name: string): string | undefined {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL | undefined;
  try {
    parsed = new URL(raw);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') {
    fail(`${name} must be an absolute http(s) URL without query or fragment (got ${JSON.stringify(raw)})`);
  }
  return raw.replace(/\/+$/, '');
}

const options: MockUpstreamOptions = {
  port: envInteger('MOCK_PORT', 4010, 65535),
  host: envHost('MOCK_HOST', '127.0.0.1'),
  latencyMs: envInteger('MOCK_LATENCY_MS', 0, 600_000),
  eventIntervalMs: envInteger('MOCK_EVENT_INTERVAL_MS', 0, 600_000),
};
const http2 = process.env.MOCK_HTTP2?.trim() ?? '';
if (!['', 'on', 'off'].includes(http2)) fail(`MOCK_HTTP2 must be on or off (got ${JSON.stringify(http2)})`);
options.http2 = http2 === 'on';
const kind = process.env.MOCK_KIND?.trim() ?? '';
if (!['', ...MOCK_KINDS].includes(kind)) fail(`MOCK_KIND must be one of ${MOCK_KINDS.join('|')} (got ${JSON.stringify(kind)})`);
options.kind = kind === '' ? 'anthropic' : (kind as MockKind);
const list = (name: string): string[] => (process.env[name] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const region = process.env.MOCK_REGION?.trim();
const bearers = list('MOCK_BEARER_TOKENS');
const keys = list('MOCK_BEDROCK_KEYS').map((pair) => {
  const at = pair.indexOf(':');
  if (at <= 0 || at === pair.length - 1) fail('MOCK_BEDROCK_KEYS must be ACCESS_KEY_ID:SECRET pairs separated by commas');
  return { accessKeyId: pair.slice(0, at), secretAccessKey: pair.slice(at + 1) };
});
options.bedrock = { credentials: keys, bearerTokens: bearers, ...(region === undefined || region === '' ? {} : { region }) };
const project = process.env.MOCK_VERTEX_PROJECT?.trim();
options.vertex = { tokens: bearers, ...(region === undefined || region === '' ? {} : { region }), ...(project === undefined || project === '' ? {} : { project }) };
const publicUrl = envUrl('MOCK_PUBLIC_URL');
if (publicUrl !== undefined) options.publicUrl = publicUrl;
const script = process.env.MOCK_SCRIPT?.trim() ?? '';
if (script !== '') {
  let parsed: unknown = script;
  if (script.startsWith('{')) {
    try {
      parsed = JSON.parse(script) as unknown;
    } catch {
      fail('MOCK_SCRIPT is not valid JSON (an object starting with "{")');
    }
  }
  const checked = typeof parsed === 'string' ? parseScript(parsed) : validateScript(parsed);
  if (typeof checked === 'string') fail(`MOCK_SCRIPT: ${checked}`);
  options.script = checked;
}
if ((process.env.MOCK_CONTROL_PORT?.trim() ?? '') !== '') options.controlPort = envInteger('MOCK_CONTROL_PORT', 0, 65535);

const mock = await createMockUpstream(options).catch((err: unknown) =>
  fail(`cannot listen on ${options.host ?? ''}:${options.port ?? ''}: ${err instanceof Error ? err.message : String(err)}`),
);
process.stdout.write(
  `${JSON.stringify({ level: 'info', time: new Date().toISOString(), service: 'mock-upstream', msg: `mock ${options.kind} API listening`, url: mock.url, ...(mock.controlUrl === undefined ? {} : { controlUrl: mock.controlUrl }), ...(options.script === undefined ? {} : { script: options.script }) })}\n`,
);

const stop = (): void => {
  void mock.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
