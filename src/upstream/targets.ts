import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { parse as yamlParse } from 'yaml';
import type { z as Z } from 'zod';
import type { UpstreamKind } from './kinds/kind.js';
import { isModelId } from './model-id.js';
import { PRICE_FIELDS, type Price } from '../core/pricing.js';

/**
 * YAML is read only from an UPSTREAMS_FILE ending in .yaml/.yml, so its parser is loaded then (the
 * package is CommonJS: `require` gives the module `import` would), not held by every gateway.
 */
function parseYaml(text: string): unknown {
  return (createRequire(import.meta.url)('yaml') as { parse: typeof yamlParse }).parse(text);
}

/**
 * Upstreams as configuration: `UPSTREAMS` (a JSON array) or `UPSTREAMS_FILE` (a JSON or YAML file
 * holding the same array). Each entry names a target, its kind, its priority tier and weight, where
 * its credential comes from (an environment variable's name: the secret itself never appears in the
 * configuration text, in logs or in messages), and optionally a model map.
 *
 * Credential modes, decided per deployment (never per request, never mixed):
 * - pass-through: every entry is `anthropic` without `api_key_env`; clients bring their own key and
 *   the gateway fails over only among upstreams that accept it;
 * - injection: every entry holds a credential (`api_key_env`, or kind bedrock/vertex), which needs
 *   GATEWAY_API_KEYS (or ALLOW_OPEN_GATEWAY), like ANTHROPIC_API_KEY.
 * A mix would let a client's traffic be billed to an account it does not own: start-up refuses it.
 */

/** What every kind of upstream has. */
interface TargetBase {
  /** `^[a-z0-9][a-z0-9_.-]{0,31}$`: the `upstream` label, `x-gateway-upstream`, the breaker prefix. */
  readonly name: string;
  readonly kind: UpstreamKind;
  /** Origin, e.g. https://api.anthropic.com (no path). */
  readonly origin: string;
  /** Path prefix of the base URL ('' or '/something'). */
  readonly pathPrefix: string;
  /** Lower first: every upstream of tier 0 is tried before any of tier 1. */
  readonly tier: number;
  /** Share of traffic within its tier. */
  readonly weight: number;
  /** Client model id -> this upstream's model id. When set, only these models are served here. */
  readonly models: ReadonlyMap<string, string> | undefined;
  /** Prices of calls this upstream served, over PRICING_JSON and the built-in list prices (e.g. a provider's regional premium). */
  readonly pricing: Readonly<Record<string, Price>> | undefined;
  /** Per-upstream transport overrides (undefined = the UPSTREAM_* defaults). */
  readonly http2: boolean | undefined;
  readonly connections: number | undefined;
  /** The gateway holds this upstream's credential (injection mode). */
  readonly holdsCredentials: boolean;
}

/** Another kind's fields: never set on this kind (so any target reads them, as undefined off their kind). */
type Absent<K extends string> = { readonly [P in K]?: undefined };

/** The Anthropic API: the gateway-held key, when there is one. */
export interface AnthropicTarget extends TargetBase, Absent<'region' | 'project' | 'awsProfile' | 'bearerToken'> {
  readonly kind: 'anthropic';
  /** The gateway-held Anthropic key, resolved from `apiKeyEnv`; undefined = clients bring their own. Secret. */
  readonly apiKey: string | undefined;
  readonly apiKeyEnv: string | undefined;
}

/** Amazon Bedrock: a region, and the AWS chain (optionally a named profile) or a Bedrock API key. */
export interface BedrockTarget extends TargetBase, Absent<'apiKey' | 'apiKeyEnv' | 'project'> {
  readonly kind: 'bedrock';
  readonly region: string;
  readonly awsProfile: string | undefined;
  /** A Bedrock API key (bearer) resolved from `bearer_token_env`. Secret. */
  readonly bearerToken: string | undefined;
}

/** Google Vertex AI: a region (or `global`) and a project; credentials from ADC. */
export interface VertexTarget extends TargetBase, Absent<'apiKey' | 'apiKeyEnv' | 'awsProfile' | 'bearerToken'> {
  readonly kind: 'vertex';
  readonly region: string;
  readonly project: string;
}

/** One configured upstream; its kind decides which kind-specific fields it has. */
export type UpstreamTarget = AnthropicTarget | BedrockTarget | VertexTarget;

const NAME = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

type Zod = typeof Z;

/**
 * The schema of one entry. zod is loaded only when UPSTREAMS or UPSTREAMS_FILE is read, as YAML is
 * (CommonJS `require`: its CommonJS build, the same schemas), so a gateway configured without them
 * does not hold it.
 */
function entrySchemaOf(z: Zod) {
  /** A model id as every provider accepts it (model-id.ts). */
  const modelId = z.string().refine(isModelId, { error: 'models must map model ids to model ids (letters, digits, . _ - : @, or a Bedrock ARN)' });

  return z
    .object({
      name: z.string().regex(NAME, { error: 'name must match ^[a-z0-9][a-z0-9_.-]{0,31}$' }),
      kind: z.enum(['anthropic', 'bedrock', 'vertex'], { error: 'kind must be anthropic, bedrock or vertex' }).default('anthropic'),
      url: z.string().optional(),
      tier: z.number({ error: 'tier must be a whole number from 0 to 100' }).int().min(0).max(100).default(0),
      weight: z.number({ error: 'weight must be a number from 0.001 to 1000000' }).min(0.001).max(1_000_000).default(1),
      api_key_env: z.string().regex(ENV_NAME, { error: 'api_key_env must be an environment variable name' }).optional(),
      models: z.record(modelId, modelId, { error: 'models must map model ids to model ids' }).optional(),
      region: z.string().regex(/^[a-z0-9-]{1,64}$/, { error: 'region must look like us-east-1 or europe-west1' }).optional(),
      project: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'project must be a Google Cloud project id' }).optional(),
      aws_profile: z.string().min(1).max(128).optional(),
      bearer_token_env: z.string().regex(ENV_NAME, { error: 'bearer_token_env must be an environment variable name' }).optional(),
      pricing: z
        .record(
          z.string().min(1).max(256),
          z.object(Object.fromEntries(PRICE_FIELDS.map((f) => [f, z.number().min(0)])) as Record<keyof Price, Z.ZodNumber>).strict(),
          { error: 'pricing must map model ids or families to {"input", "output", "cache_creation", "cache_read"} in USD per million tokens' },
        )
        .optional(),
      http2: z.boolean({ error: 'http2 must be true or false' }).optional(),
      connections: z.number({ error: 'connections must be a whole number from 1 to 1000000' }).int().min(1).max(1_000_000).optional(),
    })
    .strict();
}

let entrySchema: ReturnType<typeof entrySchemaOf> | undefined;
const entrySchemaLoaded = (): ReturnType<typeof entrySchemaOf> => (entrySchema ??= entrySchemaOf((createRequire(import.meta.url)('zod') as { z: Zod }).z));

type Entry = Z.infer<ReturnType<typeof entrySchemaOf>>;

function defaultUrl(entry: Entry): string | undefined {
  switch (entry.kind) {
    case 'anthropic':
      return 'https://api.anthropic.com';
    case 'bedrock':
      return entry.region === undefined ? undefined : `https://bedrock-runtime.${entry.region}.amazonaws.com`;
    case 'vertex':
      if (entry.region === undefined) return undefined;
      return entry.region === 'global' ? 'https://aiplatform.googleapis.com' : `https://${entry.region}-aiplatform.googleapis.com`;
  }
}

function baseUrl(text: string): URL | undefined {
  try {
    const u = new URL(text);
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '' && u.username === '' && u.password === '') return u;
  } catch {
    // reported by the caller
  }
  return undefined;
}

/** Reads the array from `UPSTREAMS` or `UPSTREAMS_FILE`; problems name the variable. */
function readEntries(source: { inline?: string | undefined; file?: string | undefined }, problems: string[]): unknown {
  if (source.inline !== undefined && source.file !== undefined) {
    problems.push('UPSTREAMS and UPSTREAMS_FILE are both set: set one');
    return undefined;
  }
  if (source.inline !== undefined) {
    try {
      return JSON.parse(source.inline);
    } catch {
      problems.push('UPSTREAMS must be a JSON array of upstream entries (see README "Failover")');
      return undefined;
    }
  }
  let text: string;
  try {
    text = readFileSync(source.file as string, 'utf8');
  } catch {
    problems.push('UPSTREAMS_FILE cannot be read (must name a readable JSON or YAML file)');
    return undefined;
  }
  try {
    return /\.ya?ml$/i.test(source.file as string) ? parseYaml(text) : JSON.parse(text);
  } catch {
    problems.push('UPSTREAMS_FILE must hold a JSON (or, for .yaml/.yml, YAML) array of upstream entries');
    return undefined;
  }
}

/**
 * Parses and checks the upstream list. Every problem names the variable and the entry (by index and
 * name), never a secret. Returns undefined when there were problems (they are in `problems`).
 */
export function parseUpstreams(
  source: { inline?: string | undefined; file?: string | undefined },
  env: NodeJS.ProcessEnv,
  problems: string[],
): UpstreamTarget[] | undefined {
  const variable = source.inline !== undefined ? 'UPSTREAMS' : 'UPSTREAMS_FILE';
  const raw = readEntries(source, problems);
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64) {
    problems.push(`${variable} must be a non-empty array of at most 64 upstream entries`);
    return undefined;
  }
  const before = problems.length;
  const targets: UpstreamTarget[] = [];
  const names = new Set<string>();
  raw.forEach((item: unknown, index) => {
    const label = typeof item === 'object' && item !== null && typeof (item as { name?: unknown }).name === 'string' ? `${variable}[${index}] ("${(item as { name: string }).name.slice(0, 32)}")` : `${variable}[${index}]`;
    const parsed = entrySchemaLoaded().safeParse(item);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.join('.');
        const message = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
        problems.push(`${label}: ${field === '' || message.startsWith(field) ? '' : `${field}: `}${message}`);
      }
      return;
    }
    const entry = parsed.data;
    const say = (problem: string): void => void problems.push(`${label}: ${problem}`);
    if (names.has(entry.name)) say(`the name "${entry.name}" is used twice`);
    names.add(entry.name);
    if ((entry.kind === 'bedrock' || entry.kind === 'vertex') && entry.region === undefined) say(`a ${entry.kind} upstream needs region`);
    if (entry.kind === 'vertex' && entry.project === undefined) say('a vertex upstream needs project');
    if (entry.kind !== 'anthropic' && entry.api_key_env !== undefined) say(`api_key_env is for anthropic upstreams (${entry.kind} uses its provider's credentials)`);
    if (entry.kind !== 'bedrock' && (entry.aws_profile !== undefined || entry.bearer_token_env !== undefined)) say('aws_profile and bearer_token_env are for bedrock upstreams');
    if (entry.kind !== 'vertex' && entry.project !== undefined) say('project is for vertex upstreams');
    const url = baseUrl(entry.url ?? defaultUrl(entry) ?? '');
    if (url === undefined) say('url must be an absolute http(s) URL without credentials, query or fragment');
    let apiKey: string | undefined;
    if (entry.api_key_env !== undefined) {
      apiKey = env[entry.api_key_env]?.trim();
      if (apiKey === undefined || apiKey === '') say(`api_key_env names ${entry.api_key_env}, which is not set`);
    }
    let bearerToken: string | undefined;
    if (entry.bearer_token_env !== undefined) {
      bearerToken = env[entry.bearer_token_env]?.trim();
      if (bearerToken === undefined || bearerToken === '') say(`bearer_token_env names ${entry.bearer_token_env}, which is not set`);
    }
    if (url === undefined) return;
    const common = {
      name: entry.name,
      origin: url.origin,
      pathPrefix: url.pathname.replace(/\/+$/, ''),
      tier: entry.tier,
      weight: entry.weight,
      models: entry.models === undefined ? undefined : new Map(Object.entries(entry.models)),
      pricing: entry.pricing,
      http2: entry.http2,
      connections: entry.connections,
    };
    // A bedrock or vertex entry without its region (or a vertex one without its project) was reported above.
    if (entry.kind === 'anthropic') {
      targets.push(Object.freeze({ ...common, kind: entry.kind, apiKey, apiKeyEnv: entry.api_key_env, holdsCredentials: entry.api_key_env !== undefined }));
    } else if (entry.region === undefined) {
      return;
    } else if (entry.kind === 'bedrock') {
      targets.push(Object.freeze({ ...common, kind: entry.kind, region: entry.region, awsProfile: entry.aws_profile, bearerToken, holdsCredentials: true }));
    } else if (entry.project !== undefined) {
      targets.push(Object.freeze({ ...common, kind: entry.kind, region: entry.region, project: entry.project, holdsCredentials: true }));
    }
  });
  if (problems.length > before) return undefined;
  const held = targets.filter((t) => t.holdsCredentials);
  if (held.length > 0 && held.length < targets.length) {
    const passThrough = targets.find((t) => !t.holdsCredentials) as UpstreamTarget;
    problems.push(
      `${variable}: "${passThrough.name}" forwards the client's own credential while "${(held[0] as UpstreamTarget).name}" uses a gateway-held one; ` +
        'mixing them would bill a client\'s traffic to an account it does not own. Give every anthropic entry an api_key_env (injection), or none (pass-through, anthropic entries only)',
    );
    return undefined;
  }
  return targets;
}

/** The one-upstream shorthand: UPSTREAM_URL (+ ANTHROPIC_API_KEY), named `anthropic`. */
export function shorthandUpstream(url: URL, apiKey: string | undefined): AnthropicTarget {
  return Object.freeze({
    name: 'anthropic',
    kind: 'anthropic',
    origin: url.origin,
    pathPrefix: url.pathname.replace(/\/+$/, ''),
    tier: 0,
    weight: 1,
    apiKey,
    apiKeyEnv: apiKey === undefined ? undefined : 'ANTHROPIC_API_KEY',
    models: undefined,
    pricing: undefined,
    http2: undefined,
    connections: undefined,
    holdsCredentials: apiKey !== undefined,
  });
}
