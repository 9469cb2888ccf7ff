import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Principal } from '../governance/model.js';

/** What the edge learns about a request and the later stages (and the request log) read. */
export interface RequestContext {
  /**
   * Keyed hash of the credential upstream bills (see http/auth.ts); never the credential itself.
   * Undefined when the request carries no upstream credential: such a request shares nothing.
   */
  tenant: string | undefined;
  /** Keyed hash of the key the client presented (gateway key or Anthropic key), for rate limits. */
  client: string | undefined;
  /** Who the presented database key belongs to (its team, user, limits, budgets); undefined for static keys and keyless requests. */
  principal: Principal | undefined;
  /**
   * The client's mode name, validated (modeOf): at most 64 characters of a fixed set. Not a label:
   * metrics resolve it through ModeLabels (a name counts as `other` until earned).
   */
  readonly mode: string;
  /** How coalescing served this request, once known. */
  role: string | undefined;
  upstreamRequestId: string | undefined;
  /** Set when the gateway answered with its own error; the log line carries the code. */
  errorCode: string | undefined;
  /** The request's SERVER span, when tracing is on. */
  readonly span: Span | undefined;
  /** performance.now() when the request reached the gateway (the start of gateway_overhead_seconds). */
  readonly receivedAt: number;
}

const kContext = Symbol('claude-gateway.context');
type WithContext = IncomingMessage & { [kContext]?: RequestContext };

const MODE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A mode header value is a client-chosen label: anything malformed collapses to one value. */
export function modeOf(req: IncomingMessage): string {
  const raw = req.headers['x-gateway-mode'];
  if (raw === undefined) return 'default';
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value !== undefined && MODE_PATTERN.test(value) ? value.toLowerCase() : 'invalid';
}

export function attachContext(req: IncomingMessage, mode: string, span?: Span, receivedAt = performance.now()): RequestContext {
  const ctx: RequestContext = {
    receivedAt,
    tenant: undefined,
    client: undefined,
    principal: undefined,
    mode,
    role: undefined,
    upstreamRequestId: undefined,
    errorCode: undefined,
    span,
  };
  (req as WithContext)[kContext] = ctx;
  return ctx;
}

export function contextOf(req: IncomingMessage): RequestContext {
  const ctx = (req as WithContext)[kContext];
  if (ctx === undefined) throw new Error('request context missing: attachContext must run first');
  return ctx;
}
