import type { OutgoingRequest, PreparedCall, ProviderResponse, UpstreamAdapter } from './kind.js';

const identity = (res: ProviderResponse): ProviderResponse => res;

/**
 * Anthropic's own API: the request goes as the client sent it. With a gateway-held key the key is
 * added here (the edge has already removed the client's credential headers); in pass-through mode
 * the client's own credential travels untouched. When the upstream maps model ids, the body's
 * top-level model is rewritten in place (`setModel`).
 */
export class AnthropicAdapter implements UpstreamAdapter {
  readonly kind = 'anthropic' as const;

  constructor(
    private readonly apiKey: string | undefined,
    /** Sets the body's top-level model (byte-exact elsewhere); only for upstreams with a model map. */
    private readonly setModel?: (body: Buffer, model: string) => Buffer,
  ) {}

  refuses(): string | undefined {
    return undefined;
  }

  prepare(req: OutgoingRequest): Promise<PreparedCall> {
    const headers = this.apiKey === undefined ? (req.headers as string[]) : [...req.headers, 'x-api-key', this.apiKey];
    const body = this.setModel !== undefined && req.model !== undefined && Buffer.isBuffer(req.body) ? this.setModel(req.body, req.model) : req.body;
    return Promise.resolve({ path: req.path, headers, body, translate: identity });
  }
}
