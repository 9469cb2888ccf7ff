import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientText, mapBedrockError, mapVertexStatus, namesDeployment, refineVertex } from '../../src/upstream/kinds/provider-errors.js';

describe('provider error mapping', () => {
  test('Bedrock error types map to Anthropic statuses', () => {
    const cases: [number, string | undefined, number][] = [
      [429, 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/', 429],
      [503, 'ServiceUnavailableException', 529],
      [429, 'ModelNotReadyException', 529],
      [500, 'InternalServerException', 500],
      [400, 'ValidationException', 400],
      [403, 'AccessDeniedException', 403],
      [404, 'ResourceNotFoundException', 404],
      [408, 'ModelTimeoutException', 504],
      [403, 'ExpiredTokenException', 502],
      [403, 'UnrecognizedClientException', 502],
      [403, 'com.amazon.coral.service#InvalidSignatureException', 502],
      [503, undefined, 529],
      [418, 'SomethingNew', 418],
      [502, 'SomethingNew', 500],
    ];
    for (const [status, type, want] of cases) assert.equal(mapBedrockError(status, type).status, want, `${status} ${type ?? ''}`);
    assert.equal(mapBedrockError(403, 'ExpiredTokenException').credentialRejected, true);
    assert.equal(mapBedrockError(403, 'AccessDeniedException').credentialRejected, undefined);
  });

  test('Vertex statuses map to Anthropic statuses; a rejected token is the gateway upstream failing', () => {
    const cases: [number, number][] = [
      [429, 429],
      [503, 529],
      [529, 529],
      [500, 500],
      [400, 400],
      [403, 403],
      [404, 404],
      [504, 504],
      [401, 502],
    ];
    for (const [status, want] of cases) assert.equal(mapVertexStatus(status).status, want, String(status));
    assert.equal(mapVertexStatus(401).credentialRejected, true);
  });

  test('only the classes about the client\'s own request keep their text, and only when it names no deployment', () => {
    const validation = mapBedrockError(400, 'ValidationException');
    assert.equal(clientText(validation, 'max_tokens: Field required'), 'max_tokens: Field required');
    for (const type of ['AccessDeniedException', 'ThrottlingException', 'ResourceNotFoundException', 'ModelErrorException', 'SomethingNew']) {
      assert.equal(clientText(mapBedrockError(400, type), 'max_tokens: Field required'), undefined, type);
    }
    assert.equal(clientText(refineVertex(mapVertexStatus(400), 'INVALID_ARGUMENT'), 'bad field'), 'bad field');
    assert.equal(clientText(refineVertex(mapVertexStatus(400), 'invalid_request_error'), 'bad field'), 'bad field');
    assert.equal(clientText(refineVertex(mapVertexStatus(400), 'FAILED_PRECONDITION'), 'bad field'), undefined);
    assert.equal(clientText(refineVertex(mapVertexStatus(403), 'INVALID_ARGUMENT'), 'bad field'), undefined, 'a class is refined only within its own status');
    assert.equal(clientText(validation, 'x'.repeat(5000)), undefined, 'an overlong text is withheld');
  });

  test('deployment text is recognised', () => {
    for (const text of [
      'arn:aws:iam::123456789012:role/x',
      'account 123456789012 is not allowed',
      'key AKIAABCDEFGHIJKLMNOP',
      'projects/acme-prod/locations/us-east5',
      'gateway@acme.iam.gserviceaccount.com',
      'ops@example.com',
    ]) {
      assert.equal(namesDeployment(text), true, text);
    }
    for (const text of ['messages.0.content: Field required', 'model claude-sonnet-4-5@20250929 is not valid', 'max_tokens: 1234567 > 64000']) {
      assert.equal(namesDeployment(text), false, text);
    }
  });
});
