/**
 * Upstream connections a pool gets by default: enough for MAX_CONCURRENT_REQUESTS live calls, that
 * many with HTTP/1.1, divided by the streams each HTTP/2 connection carries. So by default every
 * request the gateway admits can be live upstream at once: the only queue is the one an operator
 * creates by lowering UPSTREAM_CONNECTIONS (or an upstream's `connections`), and
 * UPSTREAM_POOL_WAIT_MS bounds it.
 */
export function defaultUpstreamConnections(http2: boolean, limits: { readonly maxConcurrentRequests: number; readonly upstreamHttp2MaxStreams: number }): number {
  return http2 ? Math.ceil(limits.maxConcurrentRequests / limits.upstreamHttp2MaxStreams) : limits.maxConcurrentRequests;
}
