import { UpstreamClient, type PoolObserver } from './client.js';
import { defaultUpstreamConnections } from './connections.js';
import { AnthropicAdapter } from './kinds/anthropic.js';
import type { BedrockAdapter } from './kinds/bedrock.js';
import type { UpstreamAdapter } from './kinds/kind.js';
import type { ProviderErrorReport } from './kinds/provider-errors.js';
import type { VertexAdapter } from './kinds/vertex.js';
import type { UpstreamTarget } from './targets.js';
import { Upstream, UpstreamSet } from './upstreams.js';

/** Where provider error texts kept from clients go (the process logs them at `warn`), with the upstream's name. */
export type ProviderErrorLog = (upstream: string, report: ProviderErrorReport) => void;

/**
 * The adapter classes of the cloud kinds a configuration names. Each is loaded (import()) only when
 * an upstream of its kind is configured: with them come the AWS credential chain and SigV4 signer
 * (Bedrock) or Google's auth library (Vertex), megabytes of code a gateway in front of Anthropic
 * alone never runs and should not hold.
 */
export interface CloudAdapters {
  readonly bedrock?: typeof BedrockAdapter;
  readonly vertex?: typeof VertexAdapter;
}

/** Loads the adapter modules of the kinds `targets` use, and only those. */
export async function loadCloudAdapters(targets: readonly UpstreamTarget[]): Promise<CloudAdapters> {
  const uses = (kind: UpstreamTarget['kind']): boolean => targets.some((t) => t.kind === kind);
  const [bedrock, vertex] = await Promise.all([
    uses('bedrock') ? import('./kinds/bedrock.js').then((m) => m.BedrockAdapter) : undefined,
    uses('vertex') ? import('./kinds/vertex.js').then((m) => m.VertexAdapter) : undefined,
  ]);
  return { ...(bedrock === undefined ? {} : { bedrock }), ...(vertex === undefined ? {} : { vertex }) };
}

/** The adapter of one configured upstream: how its kind is spoken and authenticated. `cloud` holds its kind's class when it is a cloud kind. */
export function adapterFor(target: UpstreamTarget, cloud: CloudAdapters, log?: ProviderErrorLog): UpstreamAdapter {
  const onProviderError = log === undefined ? undefined : (report: ProviderErrorReport): void => log(target.name, report);
  const loaded = <T>(adapter: T | undefined): T => {
    if (adapter === undefined) throw new Error(`the ${target.kind} adapter was not loaded (loadCloudAdapters with this target)`);
    return adapter;
  };
  switch (target.kind) {
    case 'anthropic':
      return new AnthropicAdapter(target.apiKey, target.models !== undefined);
    case 'bedrock':
      return new (loaded(cloud.bedrock))({ url: target.origin + target.pathPrefix, region: target.region, profile: target.awsProfile, bearerToken: target.bearerToken, onProviderError });
    case 'vertex':
      return new (loaded(cloud.vertex))({ url: target.origin + target.pathPrefix, region: target.region, project: target.project, onProviderError });
  }
}

/**
 * What building the upstreams reads of the configuration (the server layer passes its Config, which
 * has these fields: the UPSTREAMS targets and the UPSTREAM_* variables).
 */
export interface UpstreamSetSettings {
  readonly upstreams: readonly UpstreamTarget[];
  readonly upstreamHttp2: boolean;
  readonly upstreamConnections: number;
  readonly maxConcurrentRequests: number;
  readonly upstreamHttp2MaxStreams: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyTimeoutMs: number;
  readonly upstreamKeepAliveTimeoutMs: number;
  readonly upstreamPoolWaitMs: number;
  readonly upstreamCa: string | undefined;
}

/**
 * One pooled client and adapter per configured upstream; transport settings default to the UPSTREAM_* variables.
 * Asynchronous only to load the cloud kinds' adapters the configuration names (loadCloudAdapters).
 */
export async function buildUpstreams(config: UpstreamSetSettings, poolObserver: PoolObserver | undefined, providerErrors?: ProviderErrorLog): Promise<UpstreamSet> {
  const cloud = await loadCloudAdapters(config.upstreams);
  return new UpstreamSet(
    config.upstreams.map((target) => {
      const http2 = target.http2 ?? config.upstreamHttp2;
      const client = new UpstreamClient({
        origin: target.origin,
        pathPrefix: target.pathPrefix,
        connections: target.connections ?? (target.http2 === undefined ? config.upstreamConnections : defaultUpstreamConnections(http2, config)),
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        headersTimeoutMs: config.upstreamHeadersTimeoutMs,
        bodyTimeoutMs: config.upstreamBodyTimeoutMs,
        keepAliveTimeoutMs: config.upstreamKeepAliveTimeoutMs,
        poolWaitMs: config.upstreamPoolWaitMs,
        http2,
        http2MaxStreams: config.upstreamHttp2MaxStreams,
        ca: config.upstreamCa,
        poolObserver,
      });
      return new Upstream(target, client, adapterFor(target, cloud, providerErrors));
    }),
  );
}
