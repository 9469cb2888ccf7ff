import { GatewayError } from '../core/errors.js';
import type { Stage } from './stage.js';

/**
 * Clean request targets, checked before anything else looks at the path. Only origin-form targets
 * (`/path?query`) are proxied: `*`, absolute-form (`http://other/...`) and authority-form (CONNECT)
 * are refused. A path segment that an upstream or an intermediary could resolve as `.` or `..`
 * (raw or percent-encoded), or split into two segments (an encoded `/` or `\`, a raw `\`), is
 * refused too: such a path could climb out of UPSTREAM_URL's prefix while carrying the
 * gateway's credential. Refusals never reach upstream and never count against a breaker.
 */

/** Percent-encodings that decode to a dot (%2e), a slash (%2f), a backslash (%5c) or NUL (%00). */
const ENCODED_DOT = /%2e/gi;
const ENCODED_SEPARATOR = /%(?:2f|5c|00)/i;

/** Why `target` is refused, or undefined when it is a clean origin-form target. */
export function targetProblem(method: string | undefined, target: string): string | undefined {
  if (method === 'CONNECT') return 'CONNECT is not supported';
  if (target === '*') return 'the asterisk-form request target (*) is not supported';
  if (!target.startsWith('/')) return 'the request target must be a path starting with /';
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (path.includes('\\')) return 'the request path must not contain a backslash';
  if (ENCODED_SEPARATOR.test(path)) return 'the request path must not contain an encoded /, \\ or NUL';
  // Fast path: without a dot or an encoded one, no segment can be a dot-segment.
  if (!path.includes('.') && !path.includes('%')) return undefined;
  for (const segment of path.split('/')) {
    const decoded = segment.includes('%') ? segment.replace(ENCODED_DOT, '.') : segment;
    if (decoded === '.' || decoded === '..') return 'the request path must not contain . or .. segments';
  }
  return undefined;
}

export function checkTarget(): Stage {
  return (req, _res, next) => {
    const problem = targetProblem(req.method, req.url ?? '');
    if (problem === undefined) next();
    else next(new GatewayError('INVALID_TARGET', `Invalid request target: ${problem}`));
  };
}
