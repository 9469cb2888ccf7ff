import { GatewayError } from '../../errors.js';
import { withoutHeaders } from './header-list.js';
import { TopLevelObject } from './json-edit.js';
import type { OutgoingRequest, PreparedCall, ProviderResponse, UpstreamAdapter } from './kind.js';

/**
 * Anthropic's own API: the identity translation. Serves every endpoint; when constructed with a
 * key it holds, that key replaces whatever credential the request carries; the model map edits the
 * top-level `"model"` string in place, and only when the mapped id differs.
 */

const CREDENTIALS = new Set(['x-api-key', 'authorization']);

const identity = (res: ProviderResponse): ProviderResponse => res;

export interface AnthropicAdapterOptions {
  /** A key the gateway holds for this upstream; absent = the client's own credential passes through. */
  apiKey?: string | undefined;
}

/** The body with its top-level model set to `model`, or the same buffer when nothing changes. */
export function withModel(body: Buffer, model: string | undefined): Buffer {
  if (model === undefined) return body;
  const object = TopLevelObject.parse(body);
  if (object === undefined || object.string('model') === model) return body;
  if (!object.has('model')) return body;
  return object.edit({ set: { model: JSON.stringify(model) } });
}

export class AnthropicAdapter implements UpstreamAdapter {
  readonly kind = 'anthropic' as const;
  private readonly apiKey: string | undefined;

  constructor(options: AnthropicAdapterOptions = {}) {
    this.apiKey = options.apiKey;
  }

  refuses(): string | undefined {
    return undefined;
  }

  prepare(req: OutgoingRequest): Promise<PreparedCall> {
    let headers = req.headers.slice();
    if (this.apiKey !== undefined) headers = [...withoutHeaders(req.headers, CREDENTIALS), 'x-api-key', this.apiKey];
    let body = req.body;
    if (Buffer.isBuffer(body) && req.model !== undefined) {
      body = withModel(body, req.model);
    }
    return Promise.resolve({ path: req.path, headers, body, translate: identity });
  }
}

/** Raised by adapters whose body edits need a JSON object and did not get one. */
export function notTranslatable(kind: string): GatewayError {
  return new GatewayError('NOT_TRANSLATABLE', 400, `The request body must be a JSON object to be served by a ${kind} upstream`);
}
