import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMockUpstream, writeExternalAccountAdc } from '../../tools/mock-upstream/index.js';
import { chunkFrame, exceptionFrame } from '../../tools/mock-upstream/provider-framing.js';
import { rawExchange, rawRequest, type RawAnswer } from '../helpers/raw-http.js';
import { scriptedUpstream } from '../helpers/scripted-upstream.js';
import { scratchEnvForSuite } from '../helpers/cloud-credentials.js';
import { forSuite } from '../helpers/suite.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';

/**
 * Bedrock and Vertex AI upstreams that answer as a misconfigured or hostile provider would: errors
 * whose text names the deployment (role ARNs, account ids, projects, service accounts), answers
 * that are not what their framing promised, bodies too large to translate. Raw HTTP clients must
 * always get a status line and an Anthropic-shaped error, never the provider's deployment text;
 * the operator's log must have that text at `warn`, with the request id the client was given.
 */

const GATEWAY_KEY = 'gw-key-provider-errors-0123456789';
const ACCOUNT = '123456789012';
const ROLE_ARN = `arn:aws:sts::${ACCOUNT}:assumed-role/gateway-prod-bedrock/i-0abc`;
const BEDROCK_DENIED = `User: ${ROLE_ARN} is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/us.anthropic.claude because no identity-based policy allows the bedrock:InvokeModel action`;
const PROJECT = 'acme-prod-ml-4711';
const SERVICE_ACCOUNT = `gateway-sa@${PROJECT}.iam.gserviceaccount.com`;
const VERTEX_DENIED = `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/${PROJECT}/locations/us-east5/publishers/anthropic/models/claude' for ${SERVICE_ACCOUNT} (or it may not exist).`;
/** Anything of these reaching a client body is a leak. */
const DEPLOYMENT = [ACCOUNT, 'arn:aws', 'gateway-prod-bedrock', PROJECT, SERVICE_ACCOUNT, 'gserviceaccount'];

type Script = (req: IncomingMessage, res: ServerResponse) => void;
let script: Script = (_req, res) => res.end();
const scratch = scratchEnvForSuite('provider-errors-');
// Every request body is read before the script answers: the gateway's request is never cut short.
const hostile = forSuite(
  () =>
    scriptedUpstream((req, res) => {
      req.resume();
      req.once('end', () => script(req, res));
    }),
  (upstream) => upstream.close(),
  'the hostile upstream',
);
// Only its Google token endpoint is used: ADC points at it.
forSuite(
  async () => {
    const mock = await createMockUpstream({ kind: 'vertex' });
    process.env.GOOGLE_APPLICATION_CREDENTIALS = writeExternalAccountAdc(scratch.dir, `${mock.url}/_mock/google/token`, 'provider-errors-subject');
    return mock;
  },
  (mock) => mock.close(),
  'the token endpoint',
);
const ENV = { GATEWAY_API_KEYS: GATEWAY_KEY, PE_BEDROCK_KEY: 'bedrock-api-key-provider-errors', BREAKER: 'off' };
const bedrock = forSuite(
  () => startUpstreamsGateway([{ name: 'bedrock', kind: 'bedrock', url: hostile.url, region: 'us-east-1', bearer_token_env: 'PE_BEDROCK_KEY' }], ENV, GATEWAY_KEY),
  (stack) => stack.close(),
  'the bedrock gateway',
);
const vertex = forSuite(
  () => startUpstreamsGateway([{ name: 'vertex', kind: 'vertex', url: hostile.url, region: 'us-east5', project: 'test-project' }], ENV, GATEWAY_KEY),
  (stack) => stack.close(),
  'the vertex gateway',
);

/** A chunked body's payload (rawExchange reads only content-length framing). */
function dechunked(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = parseInt(body.slice(at, eol), 16);
    if (eol < 0 || !(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

async function post(stack: UpstreamsStack, path: string, body: Record<string, unknown>): Promise<RawAnswer> {
  const headers = { 'content-type': 'application/json', 'x-api-key': GATEWAY_KEY, 'anthropic-version': '2023-06-01' };
  const answer = await rawExchange(stack.gateway.url, rawRequest('POST', path, headers, JSON.stringify(body)), 10_000);
  return answer.headers['transfer-encoding'] === 'chunked' ? { ...answer, body: dechunked(answer.body) } : answer;
}

function messages(model: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }], ...extra };
}

function anthropicError(answer: RawAnswer): { type: string; error: { type: string; message: string }; request_id?: string } {
  const parsed = JSON.parse(answer.body) as { type: string; error: { type: string; message: string }; request_id?: string };
  assert.equal(parsed.type, 'error', answer.body);
  assert.equal(typeof parsed.error.type, 'string');
  assert.equal(typeof parsed.error.message, 'string');
  return parsed;
}

function assertNoDeployment(text: string): void {
  for (const secret of DEPLOYMENT) assert.ok(!text.includes(secret), `the client saw ${JSON.stringify(secret)}: ${text}`);
}

/** The warn line carrying `needle` (the provider's own text), with the request id the client saw. */
function warned(stack: UpstreamsStack, needle: string, requestId: string | undefined): Record<string, unknown> {
  const line = stack.logs.records().findLast((r) => r.level === 'warn' && JSON.stringify(r).includes(needle));
  assert.ok(line !== undefined, `no warn line with the provider's text; logs:\n${stack.logs.text()}`);
  assert.ok(requestId !== undefined && requestId !== '', 'the client was given a request id');
  assert.equal(line.upstreamRequestId, requestId, JSON.stringify(line));
  return line;
}

function bedrockError(res: ServerResponse, status: number, type: string, body: string, requestId = 'bedrock-req-0001'): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, 'x-amzn-requestid': requestId });
  res.end(body);
}

describe('provider errors do not leak the deployment', () => {
  test('bedrock AccessDeniedException: 403 permission_error in the gateway\'s words; the ARN goes to the log', async () => {
    script = (_req, res) => bedrockError(res, 403, 'AccessDeniedException', JSON.stringify({ message: BEDROCK_DENIED }), 'bedrock-req-denied');
    const answer = await post(bedrock, '/v1/messages', messages('claude-denied'));
    assert.equal(answer.status, 403, answer.body);
    const body = anthropicError(answer);
    assert.equal(body.error.type, 'permission_error');
    assertNoDeployment(answer.body);
    assert.equal(answer.headers['request-id'], 'bedrock-req-denied');
    assert.equal(body.request_id, 'bedrock-req-denied');
    const line = warned(bedrock, ROLE_ARN, 'bedrock-req-denied');
    assert.equal(line.upstream, 'bedrock');
  });

  test('bedrock errors that are not JSON, or with other types, are replaced too', async () => {
    for (const [status, type, text, want] of [
      [403, 'AccessDeniedException', `<html>${BEDROCK_DENIED}</html>`, 403],
      [404, 'ResourceNotFoundException', JSON.stringify({ Message: `Inference profile arn:aws:bedrock:us-east-1:${ACCOUNT}:application-inference-profile/x not found` }), 404],
      [429, 'ThrottlingException', JSON.stringify({ message: `Too many requests for account ${ACCOUNT}` }), 429],
      [500, 'InternalServerException', JSON.stringify({ message: `internal error in ${ROLE_ARN}` }), 500],
      [418, 'SomethingNewException', JSON.stringify({ message: `role ${ROLE_ARN}` }), 418],
      // A class whose message is kept, but whose message names the deployment: replaced all the same.
      [400, 'ValidationException', JSON.stringify({ message: `The provided model identifier arn:aws:bedrock:us-east-1:${ACCOUNT}:application-inference-profile/abc is invalid` }), 400],
    ] as const) {
      script = (_req, res) => bedrockError(res, status, type, text, `bedrock-req-${type}`);
      const answer = await post(bedrock, '/v1/messages', messages(`claude-${type.toLowerCase()}`));
      assert.equal(answer.status, want, `${type}: ${answer.body}`);
      anthropicError(answer);
      assertNoDeployment(answer.body);
      warned(bedrock, ACCOUNT, `bedrock-req-${type}`);
    }
    // The one Bedrock class whose message is the client's to read: a ValidationException about its own body.
    const message = 'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row';
    script = (_req, res) => bedrockError(res, 400, 'ValidationException', JSON.stringify({ message }));
    const answer = await post(bedrock, '/v1/messages', messages('claude-validation'));
    assert.equal(answer.status, 400, answer.body);
    const body = anthropicError(answer);
    assert.equal(body.error.type, 'invalid_request_error');
    assert.ok(body.error.message.includes(message), body.error.message);
  });

  test('bedrock stream exception frame: the SSE error event has the gateway\'s words; the provider\'s text goes to the log', async () => {
    script = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'bedrock-req-stream' });
      res.write(chunkFrame(Buffer.from('{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}')));
      res.end(exceptionFrame('internalServerException', `internal failure for ${ROLE_ARN}`));
    };
    const answer = await post(bedrock, '/v1/messages', messages('claude-stream-exception', { stream: true }));
    assert.equal(answer.status, 200);
    assert.match(answer.body, /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
    assertNoDeployment(answer.body);
    warned(bedrock, ROLE_ARN, 'bedrock-req-stream');
  });

  test('vertex PERMISSION_DENIED: 403 permission_error in the gateway\'s words; project and service account go to the log', async () => {
    script = (_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 403, message: VERTEX_DENIED, status: 'PERMISSION_DENIED' } }));
    };
    const answer = await post(vertex, '/v1/messages', messages('claude-vertex-denied'));
    assert.equal(answer.status, 403, answer.body);
    const body = anthropicError(answer);
    assert.equal(body.error.type, 'permission_error');
    assertNoDeployment(answer.body);
    // Vertex gave no request id: the gateway's own one is the client's handle on the log line.
    assert.equal(body.request_id, answer.headers['request-id']);
    const line = warned(vertex, SERVICE_ACCOUNT, answer.headers['request-id']);
    assert.equal(line.upstream, 'vertex');
  });

  test('vertex errors of other classes, in an array or not JSON, are replaced too', async () => {
    for (const [status, text, want] of [
      [400, JSON.stringify([{ error: { code: 400, message: `Billing is disabled for project ${PROJECT}`, status: 'FAILED_PRECONDITION' } }]), 400],
      [429, JSON.stringify({ error: { code: 429, message: `Quota exceeded for ${PROJECT}`, status: 'RESOURCE_EXHAUSTED' } }), 429],
      [404, `<html>projects/${PROJECT} not found</html>`, 404],
      [400, JSON.stringify({ error: { code: 400, message: `Invalid resource projects/${PROJECT}/locations/us-east5`, status: 'INVALID_ARGUMENT' } }), 400],
    ] as const) {
      script = (_req, res) => {
        res.writeHead(status, { 'content-type': text.startsWith('<') ? 'text/html' : 'application/json' });
        res.end(text);
      };
      const answer = await post(vertex, '/v1/messages', messages(`claude-vertex-${status}`));
      assert.equal(answer.status, want, answer.body);
      anthropicError(answer);
      assertNoDeployment(answer.body);
      warned(vertex, PROJECT, answer.headers['request-id']);
      vertex.logs.lines.length = 0;
    }
    // Anthropic's own invalid_request_error, relayed by Vertex, is about the client's body: its message is kept.
    const message = 'max_tokens: Field required';
    script = (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message } }));
    };
    const answer = await post(vertex, '/v1/messages', messages('claude-vertex-invalid'));
    assert.equal(answer.status, 400, answer.body);
    assert.ok(anthropicError(answer).error.message.includes(message), answer.body);
  });
});

describe('every provider answer becomes an HTTP answer', () => {
  const badGateway = (answer: RawAnswer, what: string): void => {
    assert.equal(answer.status, 502, `${what}: ${answer.body}`);
    assert.equal(anthropicError(answer).error.type, 'api_error', what);
  };

  test('bedrock count-tokens answers without inputTokens, not JSON, cut, or empty: 502 api_error', async () => {
    for (const [what, body] of [
      ['no inputTokens', '{"tokens":12}'],
      ['not JSON', '<html>hello</html>'],
      ['cut JSON', '{"inputTokens":1'],
      ['empty', ''],
      ['a negative count', '{"inputTokens":-1}'],
    ] as const) {
      script = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'bedrock-req-count' });
        res.end(body);
      };
      badGateway(await post(bedrock, '/v1/messages/count_tokens', { model: `claude-count-${what.replace(/ /g, '-')}`, messages: [{ role: 'user', content: 'x' }] }), what);
    }
    // The connection lost mid-body (content-length promised more).
    script = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '40' });
      res.write('{"inputTokens":');
      res.socket?.destroy();
    };
    badGateway(await post(bedrock, '/v1/messages/count_tokens', { model: 'claude-count-cut', messages: [{ role: 'user', content: 'x' }] }), 'connection lost');
  });

  test('provider error bodies over 1 MiB: 502 api_error; empty or non-JSON ones: the mapped error (bedrock and vertex)', async () => {
    const huge = JSON.stringify({ message: 'x'.repeat(1024 * 1024 + 10) });
    for (const [stack, status] of [
      [bedrock, 400],
      [vertex, 403],
    ] as const) {
      script = (_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': 'ValidationException' });
        res.end(huge);
      };
      badGateway(await post(stack, '/v1/messages', messages(`claude-huge-${status}`)), `huge error from ${stack === bedrock ? 'bedrock' : 'vertex'}`);
      // Empty error bodies, and error bodies of another content type, are mapped errors like any other.
      for (const [type, body] of [
        ['application/json', ''],
        ['text/plain', 'upstream says no'],
      ] as const) {
        script = (_req, res) => {
          res.writeHead(503, { 'content-type': type });
          res.end(body);
        };
        const answer = await post(stack, '/v1/messages', messages(`claude-empty-${type.length}`));
        assert.equal(answer.status, 529, answer.body);
        assert.equal(anthropicError(answer).error.type, 'overloaded_error');
      }
    }
  });

  test('a bedrock stream request answered with JSON instead of an event stream: 502 api_error', async () => {
    script = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"msg_1","type":"message"}');
    };
    badGateway(await post(bedrock, '/v1/messages', messages('claude-stream-json', { stream: true })), 'JSON for a stream');
  });
});
