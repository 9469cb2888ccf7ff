/**
 * The model ids the gateway lets travel: the one grammar every place that uses a client's model
 * (a provider URL path segment, breaker names, labels, keys) can rely on. Checked at the edge,
 * as soon as the body is read (http/proxy.ts), and again by the adapters that put the id in a URL.
 *
 * Real ids it accepts:
 * - Anthropic: `claude-sonnet-5`, `claude-3-5-sonnet-20241022`, `claude-3-7-sonnet-latest`;
 * - Bedrock: `anthropic.claude-sonnet-5-v1:0`, `us.anthropic.claude-3-5-sonnet-20241022-v2:0`, and ARNs
 *   of foundation models, inference profiles, provisioned and custom models, e.g.
 *   `arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-5-v1:0`;
 * - Vertex AI: `claude-sonnet-5@20260801`.
 *
 * Invariants (what a path segment and a label can rely on): 1 to MAX_MODEL_ID_CHARS characters of
 * `A-Z a-z 0-9 . _ - : @`, starting with a letter or digit, so never `.`, `..`, empty, a control
 * character, `%`, a space, or a lone surrogate. `/` only inside a Bedrock ARN, between segments that
 * each start with a letter or digit: no empty, `.` or `..` segment, so once escaped for the path
 * (`encodeURIComponent`, `/` as `%2F`) the id stays one segment whatever a server normalises.
 */

/** Longest model id accepted. Bedrock ARNs of inference profiles are ~120 characters; Anthropic ids < 64. */
export const MAX_MODEL_ID_CHARS = 256;

const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._:@-]*';
/** A plain id (Anthropic, Bedrock model or profile id, Vertex `name@version`). */
const PLAIN = new RegExp(`^${SEGMENT}$`);
/** A Bedrock ARN: `arn:<partition>:bedrock:<region>:<account>:<resource-type>/<segments>`. */
const BEDROCK_ARN = new RegExp(`^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]*:[0-9]*:[a-z-]+/${SEGMENT}(?:/${SEGMENT})*$`);

/** Whether `model` is an id some provider accepts (see the grammar above). */
export function isModelId(model: string): boolean {
  if (model.length === 0 || model.length > MAX_MODEL_ID_CHARS) return false;
  return PLAIN.test(model) || (model.startsWith('arn:') && BEDROCK_ARN.test(model));
}

/** The client-facing reason a model id is refused (never echoes the id: it may be anything). */
export const MODEL_ID_REFUSAL = `model: not a model id (1-${MAX_MODEL_ID_CHARS} characters of A-Z a-z 0-9 . _ - : @ starting with a letter or digit, or a Bedrock ARN)`;
