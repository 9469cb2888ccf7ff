import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';

import { BEDROCK_STREAM_FAULTS, type BedrockStreamFault } from './faults.js';
import { bedrockErrorAnswer } from './provider-framing.js';

/** SHA-256 and HMAC from node:crypto (the AWS SDK's own choice in Node), for SigV4. */
const Sha256Hash = Hash.bind(null, 'sha256');

/**
 * The mock's Bedrock and Vertex AI modes: what the real services check before Claude sees a request
 * (a SigV4 signature that verifies against the test credentials, or a bearer token; the provider's
 * paths; `anthropic_version`; no `model` in the body), then the request in Anthropic's terms for
 * the mock's usual handlers, so answers are the Anthropic mode's, ids aside.
 *
 * Credentials it accepts: static test keys and bearer tokens given as options, plus short-lived
 * ones it issues itself at its control endpoints (AWS container credentials, a Google STS token
 * exchange), which tests expire to exercise refreshes. All stores are bounded.
 */

export type MockKind = 'anthropic' | 'bedrock' | 'vertex';
export const MOCK_KINDS: readonly MockKind[] = ['anthropic', 'bedrock', 'vertex'];

export interface BedrockMockOptions {
  /** Region the signatures must be scoped to. Default us-east-1. */
  region?: string;
  /** Long-term keys that verify (no session token). */
  credentials?: readonly { accessKeyId: string; secretAccessKey: string }[];
  /** Bedrock API keys accepted as `Authorization: Bearer`. */
  bearerTokens?: readonly string[];
}

export interface VertexMockOptions {
  /** Default test-project. */
  project?: string;
  /** Default us-east5. */
  region?: string;
  /** Access tokens accepted besides those the mock's token endpoint issued. */
  tokens?: readonly string[];
}

const BEDROCK_VERSION = 'bedrock-2023-05-31';
const VERTEX_VERSION = 'vertex-2023-10-16';
/** Issued credentials and tokens kept; the oldest are forgotten first. */
const MAX_ISSUED = 1_000;
/** How long the Vertex mock says a call takes, against a request's X-Server-Timeout. */
const VERTEX_MODELLED_SECONDS = 1;
/** AWS rejects signatures dated further than this from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;

/** A bounded insertion-ordered map: the oldest entry goes when full. */
class Bounded<V> {
  private readonly map = new Map<string, V>();
  set(key: string, value: V): void {
    if (this.map.size >= MAX_ISSUED) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(key, value);
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  values(): IterableIterator<V> {
    return this.map.values();
  }
  clear(): void {
    this.map.clear();
  }
}

interface IssuedAws {
  secretAccessKey: string;
  sessionToken: string;
  expired: boolean;
}

/** What the mock answers instead of the API, before the request reaches a handler. */
export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The request in Anthropic's terms, or a refusal in the provider's. */
export type Translated =
  | { ok: true; path: string; body: string; bedrockCountTokens: boolean }
  | { ok: false; status: number; message: string };

function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `20261123T220000Z` as a Date. */
function amzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (m === null) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export class ProviderMock {
  private readonly issuedAws = new Bounded<IssuedAws>();
  private readonly issuedGoogle = new Bounded<{ expired: boolean }>();
  private issuedCount = 0;
  readonly bedrockRegion: string;
  readonly vertexProject: string;
  readonly vertexRegion: string;

  constructor(
    readonly kind: MockKind,
    private readonly bedrock: BedrockMockOptions = {},
    private readonly vertex: VertexMockOptions = {},
  ) {
    this.bedrockRegion = bedrock.region ?? 'us-east-1';
    this.vertexProject = vertex.project ?? 'test-project';
    this.vertexRegion = vertex.region ?? 'us-east5';
  }

  /**
   * Whose prompt cache a call uses: Bedrock's and Vertex's caches are per account (project) and
   * region, and one mock imitates one account in one region.
   */
  cacheScope(): string {
    return this.kind === 'bedrock' ? `bedrock:${this.bedrockRegion}` : `vertex:${this.vertexProject}/${this.vertexRegion}`;
  }

  /** Bedrock's per-request stream fault (`x-mock-bedrock-fault`), if any. */
  streamFault(headers: IncomingHttpHeaders): BedrockStreamFault | undefined {
    const value = one(headers, 'x-mock-bedrock-fault')?.trim().toLowerCase();
    return (BEDROCK_STREAM_FAULTS as readonly string[]).includes(value ?? '') ? (value as BedrockStreamFault) : undefined;
  }

  /** AWS container credentials (the format of AWS_CONTAINER_CREDENTIALS_FULL_URI endpoints), new ones on every call. */
  issueAwsCredentials(): Record<string, string> {
    const n = ++this.issuedCount;
    const accessKeyId = `ASIAMOCK${String(n).padStart(12, '0')}`;
    const issued: IssuedAws = { secretAccessKey: randomBytes(30).toString('base64'), sessionToken: `mock-session-${n}-${randomBytes(12).toString('hex')}`, expired: false };
    this.issuedAws.set(accessKeyId, issued);
    return {
      AccessKeyId: accessKeyId,
      SecretAccessKey: issued.secretAccessKey,
      Token: issued.sessionToken,
      Expiration: new Date(Date.now() + 6 * 3600 * 1000).toISOString(),
    };
  }

  /** A Google STS token exchange answer (external_account credentials' token_url). */
  issueGoogleToken(): Record<string, string | number> {
    const token = `ya29.mock-${++this.issuedCount}-${randomBytes(12).toString('hex')}`;
    this.issuedGoogle.set(token, { expired: false });
    return { access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 };
  }

  /** Every credential and token issued so far is rejected from now on (as expired); new ones are not. */
  expireIssued(): void {
    for (const c of this.issuedAws.values()) c.expired = true;
    for (const t of this.issuedGoogle.values()) t.expired = true;
  }

  clear(): void {
    this.issuedAws.clear();
    this.issuedGoogle.clear();
  }

  /** Checks the request's credentials as the provider would; a refusal in its framing, or undefined. */
  async authenticate(method: string, path: string, headers: IncomingHttpHeaders, body: string, requestId: string): Promise<Refusal | undefined> {
    return this.kind === 'bedrock' ? this.authenticateBedrock(method, path, headers, body, requestId) : this.authenticateVertex(headers);
  }

  private async authenticateBedrock(method: string, path: string, headers: IncomingHttpHeaders, body: string, requestId: string): Promise<Refusal | undefined> {
    const deny = (type: string, message: string): Refusal => bedrockErrorAnswer(type, 403, message, requestId);
    if (one(headers, 'x-mock-bedrock-fault')?.trim().toLowerCase() === 'expired-token') return deny('ExpiredTokenException', 'The security token included in the request is expired');
    const authorization = one(headers, 'authorization') ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (bearer !== undefined) {
      return (this.bedrock.bearerTokens ?? []).some((t) => sameText(t, bearer)) ? undefined : deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    const parsed = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(authorization);
    if (parsed === null) return { status: 403, headers: { 'x-amzn-errortype': 'MissingAuthenticationTokenException', 'x-amzn-requestid': requestId }, body: Buffer.from('{"message":"Missing Authentication Token"}') };
    const [, accessKeyId = '', , region, service, signedHeaders = ''] = parsed;
    if (region !== this.bedrockRegion || service !== 'bedrock') return deny('InvalidSignatureException', `Credential should be scoped to a valid region and service bedrock (got ${region ?? ''}/${service ?? ''})`);
    const issued = this.issuedAws.get(accessKeyId);
    const staticKey = this.bedrock.credentials?.find((c) => c.accessKeyId === accessKeyId);
    if (issued === undefined && staticKey === undefined) return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (issued !== undefined && (issued.expired || one(headers, 'x-amz-security-token') !== issued.sessionToken)) {
      return deny('ExpiredTokenException', 'The security token included in the request is expired');
    }
    const dateText = one(headers, 'x-amz-date') ?? '';
    const date = amzDate(dateText);
    if (date === undefined || Math.abs(date.getTime() - Date.now()) > MAX_SKEW_MS) return deny('InvalidSignatureException', 'Signature expired or x-amz-date missing');
    // Recompute the signature over exactly the signed headers as received.
    const signed: Record<string, string> = {};
    for (const name of signedHeaders.split(';')) signed[name] = one(headers, name) ?? '';
    const host = one(headers, 'host') ?? '';
    const signer = new SignatureV4({
      service: 'bedrock',
      region: this.bedrockRegion,
      sha256: Sha256Hash,
      credentials: {
        accessKeyId,
        secretAccessKey: issued?.secretAccessKey ?? staticKey?.secretAccessKey ?? '',
        ...(issued === undefined ? {} : { sessionToken: issued.sessionToken }),
      },
    });
    const expected = await signer.sign(
      { method, protocol: 'https:', hostname: host.split(':')[0] ?? host, path, query: {}, headers: signed, body: Buffer.from(body) },
      { signingDate: date },
    );
    const expectedAuth = expected.headers.authorization ?? '';
    if (!sameText(expectedAuth, authorization)) {
      return deny('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
    }
    return undefined;
  }

  private authenticateVertex(headers: IncomingHttpHeaders): Refusal | undefined {
    // Google's front end honours X-Server-Timeout (seconds); the mock models every call as taking longer than 1 s.
    const serverTimeout = Number(one(headers, 'x-server-timeout') ?? NaN);
    if (serverTimeout < VERTEX_MODELLED_SECONDS) {
      const message = 'Deadline expired before operation could complete.';
      return { status: 504, headers: {}, body: Buffer.from(JSON.stringify({ error: { code: 504, message, status: 'DEADLINE_EXCEEDED' } })) };
    }
    const token = /^Bearer\s+(\S+)$/i.exec(one(headers, 'authorization') ?? '')?.[1];
    const issued = token === undefined ? undefined : this.issuedGoogle.get(token);
    const known = token !== undefined && (issued !== undefined || (this.vertex.tokens ?? []).some((t) => sameText(t, token)));
    if (known && issued?.expired !== true) return undefined;
    const message = 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.';
    return { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' }, body: Buffer.from(JSON.stringify({ error: { code: 401, message, status: 'UNAUTHENTICATED' } })) };
  }

  /** The provider request in Anthropic's terms (path and body), after the provider's own checks. */
  translate(method: string, pathname: string, body: string): Translated {
    return this.kind === 'bedrock' ? this.translateBedrock(method, pathname, body) : this.translateVertex(method, pathname, body);
  }

  private translateBedrock(method: string, pathname: string, body: string): Translated {
    const route = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream|count-tokens)$/.exec(pathname);
    if (route === null) return { ok: false, status: 404, message: `Not found: ${method} ${pathname}` };
    if (method !== 'POST') return { ok: false, status: 400, message: `Method ${method} is not supported` };
    const modelId = decodeURIComponent(route[1] ?? '');
    const action = route[2];
    let outer: unknown;
    try {
      outer = JSON.parse(body);
    } catch {
      return { ok: false, status: 400, message: 'Malformed input request, please reformat your input and try again.' };
    }
    let inner = outer;
    if (action === 'count-tokens') {
      const b64 = isObject(outer) && isObject(outer.input) && isObject(outer.input.invokeModel) ? outer.input.invokeModel.body : undefined;
      if (typeof b64 !== 'string') return { ok: false, status: 400, message: '1 validation error detected: Value at \'input\' failed to satisfy constraint: Member must not be null' };
      try {
        inner = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
      } catch {
        return { ok: false, status: 400, message: 'Malformed input request, please reformat your input and try again.' };
      }
    }
    if (!isObject(inner)) return { ok: false, status: 400, message: 'Malformed input request: expected an object' };
    if (inner.anthropic_version !== BEDROCK_VERSION) return { ok: false, status: 400, message: `Malformed input request: anthropic_version must be ${BEDROCK_VERSION}` };
    for (const key of ['model', 'stream']) {
      if (key in inner) return { ok: false, status: 400, message: `Malformed input request: #: extraneous key [${key}] is not permitted, please reformat your input and try again.` };
    }
    const { anthropic_version: _version, anthropic_beta: _beta, ...rest } = inner;
    const anthropic = { model: modelId, ...rest, ...(action === 'invoke-with-response-stream' ? { stream: true } : {}) };
    return { ok: true, path: action === 'count-tokens' ? '/v1/messages/count_tokens' : '/v1/messages', body: JSON.stringify(anthropic), bedrockCountTokens: action === 'count-tokens' };
  }

  private translateVertex(method: string, pathname: string, body: string): Translated {
    const route = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(pathname);
    if (route === null) return { ok: false, status: 404, message: `The requested URL ${pathname} was not found on this server.` };
    if (method !== 'POST') return { ok: false, status: 404, message: `Method ${method} not found` };
    if (route[1] !== this.vertexProject || route[2] !== this.vertexRegion) return { ok: false, status: 403, message: `Permission denied on resource project ${route[1] ?? ''} (location ${route[2] ?? ''})` };
    const model = decodeURIComponent(route[3] ?? '');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return { ok: false, status: 400, message: 'Invalid JSON payload received.' };
    }
    if (!isObject(parsed)) return { ok: false, status: 400, message: 'Invalid JSON payload: expected an object' };
    if (parsed.anthropic_version !== VERTEX_VERSION) return { ok: false, status: 400, message: `anthropic_version: must be ${VERTEX_VERSION}` };
    const { anthropic_version: _version, ...rest } = parsed;
    if (model === 'count-tokens') {
      if (route[4] !== 'rawPredict') return { ok: false, status: 400, message: 'count-tokens is served by :rawPredict' };
      return { ok: true, path: '/v1/messages/count_tokens', body: JSON.stringify(rest), bedrockCountTokens: false };
    }
    if ('model' in parsed) return { ok: false, status: 400, message: 'model: Extra inputs are not permitted (the model is named in the URL)' };
    if ((parsed.stream === true) !== (route[4] === 'streamRawPredict')) return { ok: false, status: 400, message: 'stream: must be true exactly for :streamRawPredict' };
    return { ok: true, path: '/v1/messages', body: JSON.stringify({ model, ...rest }), bedrockCountTokens: false };
  }
}
