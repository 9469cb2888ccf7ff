/**
 * Message Batches carry an ABSOLUTE `results_url` that the SDK fetches as-is. Left alone it would
 * send clients around the gateway, so URLs under the upstream base are re-rooted at the gateway's
 * own address (PUBLIC_URL, or an allowed Host: see http/public-origin.ts; never an arbitrary
 * client-chosen Host). URLs pointing anywhere else are left untouched.
 */

/** Batch endpoints whose JSON answers may carry `results_url` (create, get, list, cancel). */
export function isBatchPath(path: string): boolean {
  return path.startsWith('/v1/messages/batches');
}

function rewriteOne(value: unknown, from: string, to: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const batch = value as { results_url?: unknown };
  if (typeof batch.results_url === 'string' && batch.results_url.startsWith(from + '/')) {
    batch.results_url = to + batch.results_url.slice(from.length);
    return true;
  }
  return false;
}

/**
 * Rewrites `results_url` in a batch object or a list page (`data: [...]`). Returns the new body,
 * or undefined when nothing changed (the original bytes are then sent unchanged).
 */
export function rewriteResultsUrls(body: Buffer, upstreamBaseUrl: string, gatewayBaseUrl: string): Buffer | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  let changed = rewriteOne(parsed, upstreamBaseUrl, gatewayBaseUrl);
  const data = (parsed as { data?: unknown } | null)?.data;
  if (Array.isArray(data)) {
    for (const item of data) changed = rewriteOne(item, upstreamBaseUrl, gatewayBaseUrl) || changed;
  }
  return changed ? Buffer.from(JSON.stringify(parsed)) : undefined;
}
