/** Credentials of a gateway whose console (on the admin listener) tests drive. */
export const ADMIN_KEY = 'admin-key-for-tests-0123456789abcdef';
export const VIEWER_KEY = 'viewer-key-for-tests-0123456789abcdef';
export const GATEWAY_KEY = 'gateway-key-for-tests-0123';

/** A gateway with its admin listener (free port), the console's two credentials, an in-memory store, and one static gateway key. */
export function consoleEnv(): Record<string, string> {
  return { ADMIN_API_KEY: ADMIN_KEY, ADMIN_VIEWER_KEY: VIEWER_KEY, ADMIN_PORT: '0', GOVERNANCE_DATA_DIR: 'memory:', GATEWAY_API_KEYS: GATEWAY_KEY };
}
