/**
 * The mock's own Anthropic error bodies, written from the API's documentation
 * (https://docs.anthropic.com/en/api/errors), not from the gateway's code: the mock is the oracle
 * the gateway is tested against, so it shares no code with what it checks.
 */

/** Anthropic's error `type` for each status the mock sends. */
const TYPE_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'timeout_error',
  413: 'request_too_large',
  431: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

export interface MockErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id?: string;
}

/** `{"type":"error","error":{"type":...,"message":...}}`, with the request id when the mock gave one. */
export function errorBody(status: number, message: string, requestId?: string): MockErrorBody {
  const type = TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  const body: MockErrorBody = { type: 'error', error: { type, message } };
  if (requestId !== undefined) body.request_id = requestId;
  return body;
}
