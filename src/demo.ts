import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { startGateway } from './server.js';
import { createMockUpstream } from './mock-upstream/index.js';

/**
 * `npm run demo`: the gateway in front of the project's own mock Anthropic API, so the whole path
 * can be tried with no API key and no tokens spent. Any key works against the mock; the banner's
 * examples (the same as README's) fall back to `demo-key` when ANTHROPIC_API_KEY is unset.
 */
async function demo(): Promise<void> {
  const mockPort = Number(process.env.MOCK_PORT ?? '4010');
  const mock = await createMockUpstream({ port: Number.isInteger(mockPort) ? mockPort : 4010, eventIntervalMs: 20 });
  let config;
  try {
    config = loadConfig({ ...process.env, UPSTREAM_URL: mock.url });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`claude-gateway: ${err.message}\n`);
      await mock.close();
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger);
  process.stdout.write(
    [
      '',
      `  claude-gateway demo: gateway ${gateway.url}  ->  mock Anthropic API ${mock.url}`,
      '',
      '  The mock accepts any API key; these use yours when ANTHROPIC_API_KEY is set, else demo-key:',
      `    curl -s ${gateway.url}/v1/messages -H "x-api-key: \${ANTHROPIC_API_KEY:-demo-key}" \\`,
      `      -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\`,
      `      -d '{"model":"claude-sonnet-5","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}'`,
      '',
      `  Or point the SDK at it:  new Anthropic({ baseURL: '${gateway.url}', apiKey: process.env.ANTHROPIC_API_KEY ?? 'demo-key' })`,
      '',
      '',
    ].join('\n'),
  );
  const stop = (): void => {
    void gateway
      .shutdown()
      .then(() => mock.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch((err: unknown) => {
  process.stderr.write(`claude-gateway demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
