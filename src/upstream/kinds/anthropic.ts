import { GatewayError } from '../../core/errors.js';
import { withoutHeaders } from '../header-list.js';
import { TopLevelObject } from './json-edit.js';
import { unchangedAnswer, type OutgoingRequest, type PreparedCall, type UpstreamAdapter } from './kind.js';

/**
 * Anthropic's own API: the request goes as the client sent it. With a gateway-held key, that key
 * replaces any credential the request carries (the edge has already removed the client's; this is
 * the second line). In pass-through mode the client's own credential travels untouched. When the
 * upstream maps model ids, the body's top-level `"model"` is rewritten in place, and only when the
 * mapped id differs: every other byte is the client's.
 */

/**
 * Client headers that do NOT reach Anthropic when the gateway holds the key: the client's credentials
 * (the gateway's `x-api-key` replaces them). Every other end-to-end header travels as the client sent
 * it (the faithful-proxy promise): hop-by-hop, `x-gateway-*`, `host`, `content-length`, `expect` and
 * `accept-encoding` are the edge's (upstream/headers.ts). In pass-through mode nothing is removed here.
 */
export const ANTHROPIC_HELD_KEY_DROPS: ReadonlySet<string> = new Set(['x-api-key', 'authorization']);

/** The body with its top-level model set to `model`, or the same buffer when nothing changes. */
export function withModel(body: Buffer, model: string): Buffer {
  const object = TopLevelObject.parse(body);
  if (object?.has('model') !== true || object.string('model') === model) return body;
  return object.edit({ set: { model: JSON.stringify(model) } });
}

export class AnthropicAdapter implements UpstreamAdapter {
  readonly kind = 'anthropic' as const;

  constructor(
    /** A key the gateway holds for this upstream; undefined = pass-through. Secret. */
    private readonly apiKey?: string,
    /** The upstream has a model map: bodies may need their model rewritten (a scan per call, so only then). */
    private readonly mapsModels = false,
  ) {}

  refuses(): string | undefined {
    return undefined;
  }

  prepare(req: OutgoingRequest): Promise<PreparedCall> {
    return Promise.resolve(this.prepareNow(req));
  }

  /** Never waits: the key is held or passed through, and the body edited (if at all) in place of a copy. */
  prepareNow(req: OutgoingRequest): PreparedCall {
    // Pass-through: the list as the edge built it (nothing downstream mutates it), no copy per request.
    let headers = req.headers as string[];
    if (this.apiKey !== undefined) {
      headers = withoutHeaders(req.headers, ANTHROPIC_HELD_KEY_DROPS);
      headers.push('x-api-key', this.apiKey);
    }
    const body = this.mapsModels && req.model !== undefined && Buffer.isBuffer(req.body) ? withModel(req.body, req.model) : req.body;
    return { path: req.path, headers, body, translate: unchangedAnswer };
  }
}

/** Raised by adapters whose body edits need a JSON object and did not get one. */
export function notTranslatable(kind: string): GatewayError {
  return new GatewayError('NOT_TRANSLATABLE', `The request body must be a JSON object to be served by a ${kind} upstream`);
}
