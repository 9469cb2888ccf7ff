import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mapBedrockError, mapVertexStatus } from '../../src/upstream/kinds/provider-errors.js';

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
});
