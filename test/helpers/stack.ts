import Anthropic from '@anthropic-ai/sdk';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/server.js';
import { LogCapture } from './log-capture.js';
import { forSuite } from './suite.js';
import { createMockUpstream, type MockUpstream, type MockUpstreamOptions } from '../../tools/mock-upstream/index.js';

export { LogCapture };

export const TEST_API_KEY = 'sk-ant-test-0123456789abcdef';

export interface Stack {
  mock: MockUpstream;
  gateway: Gateway;
  config: Config;
  logs: LogCapture;
  /** The official SDK pointed at the gateway (retries off unless asked). */
  client(options?: ConstructorParameters<typeof Anthropic>[0]): Anthropic;
  close(): Promise<void>;
}

/** What every in-process test gateway starts from: a free loopback port, info logs (`env` may override). */
const TEST_GATEWAY_ENV = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' };

export interface TestGateway {
  gateway: Gateway;
  config: Config;
  logs: LogCapture;
}

/** A real gateway in this process configured by `env` over TEST_GATEWAY_ENV, its JSON logs kept in `logs`. */
export async function launchGateway(env: Record<string, string | undefined>, logs = new LogCapture(), options?: GatewayOptions): Promise<TestGateway> {
  const config = loadConfig({ ...TEST_GATEWAY_ENV, ...env });
  const gateway = await startGateway(config, createLogger(config.logLevel, logs), options);
  return { gateway, config, logs };
}

/** `launchGateway`'s gateway alone (for tests that read no logs or keep their own `logs`). */
export async function startTestGateway(env: Record<string, string | undefined>, logs?: LogCapture, options?: GatewayOptions): Promise<Gateway> {
  return (await launchGateway(env, logs, options)).gateway;
}

export interface StackOptions {
  env?: Record<string, string>;
  mock?: MockUpstreamOptions;
  basePath?: string;
  gateway?: GatewayOptions;
}

/** A real mock upstream and a real gateway on ephemeral loopback ports. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const mock = await createMockUpstream(options.mock);
  const { gateway, config, logs } = await launchGateway({ UPSTREAM_URL: mock.url, ...options.env }, new LogCapture(), options.gateway);
  return {
    mock,
    gateway,
    config,
    logs,
    client: (clientOptions) =>
      new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url + (options.basePath ?? ''), maxRetries: 0, ...clientOptions }),
    close: async () => {
      await gateway.shutdown();
      await mock.close();
    },
  };
}

/** One stack for the enclosing suite: started before its tests, closed after them (see `forSuite`). */
export function stackForSuite(options: StackOptions = {}): Stack {
  return forSuite(() => startStack(options), (stack) => stack.close(), 'the suite\'s stack');
}
