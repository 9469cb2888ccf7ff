import { UpstreamClient } from '../../src/upstream/client.js';

/** A pooled client to a test upstream at `url` (HTTP/1.1, test-sized deadlines), as the gateway builds one. */
export function testUpstreamClient(url: string, connections: number): UpstreamClient {
  return new UpstreamClient({
    origin: new URL(url).origin,
    pathPrefix: '',
    connections,
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
    keepAliveTimeoutMs: 4_000,
    poolWaitMs: 2_000,
    http2: false,
    http2MaxStreams: 100,
  });
}
