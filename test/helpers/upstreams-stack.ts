import Anthropic from '@anthropic-ai/sdk';
import { type Config } from '../../src/config.js';
import { type Gateway } from '../../src/server.js';
import { LogCapture } from './log-capture.js';
import { launchGateway, TEST_API_KEY } from './stack.js';
import { forSuite } from './suite.js';

/** One UPSTREAMS entry, as the test writes it (url filled in by the caller). */
export type UpstreamEntry = Record<string, unknown> & { name: string; url: string };

export interface UpstreamsStack {
  gateway: Gateway;
  config: Config;
  logs: LogCapture;
  /** The official SDK pointed at the gateway, retries off, with `apiKey` (the client's own key, or a gateway key). */
  client(options?: ConstructorParameters<typeof Anthropic>[0]): Anthropic;
  close(): Promise<void>;
}

/** A real gateway on a free loopback port in front of the given upstreams (UPSTREAMS); the caller owns and closes the upstreams. */
export async function startUpstreamsGateway(upstreams: UpstreamEntry[], env: Record<string, string> = {}, apiKey = TEST_API_KEY): Promise<UpstreamsStack> {
  const { gateway, config, logs } = await launchGateway({ UPSTREAMS: JSON.stringify(upstreams), ...env });
  return {
    gateway,
    config,
    logs,
    client: (options) => new Anthropic({ apiKey, baseURL: gateway.url, maxRetries: 0, ...options }),
    close: async () => {
      await gateway.shutdown();
    },
  };
}

/**
 * For the enclosing suite: one gateway per entry `entries()` names (each in front of that upstream
 * alone, `env` and `apiKey` as `startUpstreamsGateway` takes them), started after the fixtures declared
 * before it (so `entries` may read their urls), closed after the suite's tests.
 */
export function gatewaysForSuite<K extends string>(entries: () => Record<K, UpstreamEntry>, env: Record<string, string>, apiKey = TEST_API_KEY): Record<K, UpstreamsStack> {
  return forSuite(
    async () => {
      const stacks = {} as Record<K, UpstreamsStack>;
      for (const [name, entry] of Object.entries(entries()) as [K, UpstreamEntry][]) stacks[name] = await startUpstreamsGateway([entry], env, apiKey);
      return stacks;
    },
    async (stacks) => {
      for (const stack of Object.values<UpstreamsStack>(stacks)) await stack.close();
    },
    'the suite\'s gateways',
  );
}
