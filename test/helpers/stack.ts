import Anthropic from '@anthropic-ai/sdk';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/server.js';
import { LogCapture } from './log-capture.js';
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

/** A real mock upstream and a real gateway on ephemeral loopback ports. */
export async function startStack(
  options: { env?: Record<string, string>; mock?: MockUpstreamOptions; basePath?: string; gateway?: GatewayOptions } = {},
): Promise<Stack> {
  const mock = await createMockUpstream(options.mock);
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    UPSTREAM_URL: mock.url,
    LOG_LEVEL: 'info',
    ...options.env,
  });
  const logs = new LogCapture();
  const gateway = await startGateway(config, createLogger(config.logLevel, logs), options.gateway);
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
