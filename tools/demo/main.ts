// First, as in src/main.ts: the gateway's V8 settings (src/v8-heap.ts) before any request code runs.
import '../../src/v8-heap.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startGateway } from '../../src/server.js';
import { createMockUpstream } from '../mock-upstream/index.js';
import { failoverBanner, startFailoverUpstreams } from './failover.js';
import { startTiersUpstreams, tiersBanner } from './tiers.js';

/** `--<name>=<value>` from argv, if given. */
function flagValue(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.slice(2).find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/**
 * `npm run demo`: the gateway in front of the project's own mock Anthropic API, so the whole path
 * can be tried with no API key and no tokens spent. Any key works against the mock; the banner's
 * examples (the same as README's) fall back to `demo-key` when ANTHROPIC_API_KEY is unset.
 * `npm run demo -- --failover [--primary-script=<mock script>]`: two mocks behind UPSTREAMS (failover.ts).
 * `npm run demo -- --tiers [--primary-script=<mock script>]`: Anthropic, Bedrock and Vertex mocks in three tiers (tiers.ts).
 */
async function demo(): Promise<void> {
  const mockPort = Number(process.env.MOCK_PORT ?? '4010');
  const basePort = Number.isInteger(mockPort) ? mockPort : 4010;
  // --failover: two mock upstreams (a primary that goes down for a while, a healthy secondary) behind UPSTREAMS.
  const args = process.argv.slice(2);
  // --tiers: Anthropic (scripted), Bedrock and Vertex mocks in three tiers, with made-up credentials only they accept.
  const tiers = args.includes('--tiers') ? await startTiersUpstreams(basePort, flagValue('primary-script')) : undefined;
  const failover = tiers === undefined && args.includes('--failover') ? await startFailoverUpstreams(basePort, flagValue('primary-script')) : undefined;
  const mock = tiers?.anthropic ?? failover?.primary ?? (await createMockUpstream({ port: basePort, eventIntervalMs: 20 }));
  const closeMocks = (): Promise<void> => tiers?.close() ?? failover?.close() ?? mock.close();
  let config;
  try {
    // Failover and tiers demos: the mocks are the only upstreams (a key or file of the environment would mix modes).
    const { ANTHROPIC_API_KEY: _key, UPSTREAMS_FILE: _file, UPSTREAM_URL: _url, ...rest } = process.env;
    if (tiers !== undefined) {
      // The providers' credential chains read process.env: only the demo's made-up credentials may be there.
      for (const name of Object.keys(process.env)) if (name.startsWith('AWS_') || name.startsWith('GOOGLE_')) Reflect.deleteProperty(process.env, name);
      for (const [name, value] of Object.entries(tiers.env)) if (name.startsWith('AWS_') || name.startsWith('GOOGLE_')) process.env[name] = value;
      config = loadConfig({ ...rest, ...tiers.env, UPSTREAMS: tiers.upstreams });
    } else {
      config = loadConfig(failover === undefined ? { ...process.env, UPSTREAM_URL: mock.url } : { ...rest, UPSTREAMS: failover.upstreams });
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`claude-gateway: ${err.message}\n`);
      await closeMocks();
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger);
  process.stdout.write(
    (tiers !== undefined
      ? tiersBanner(gateway.url, tiers)
      : failover !== undefined
      ? failoverBanner(gateway.url, failover)
      : [
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
        ]
    ).join('\n'),
  );
  const stop = (): void => {
    void gateway
      .shutdown()
      .then(closeMocks)
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch((err: unknown) => {
  process.stderr.write(`claude-gateway demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
