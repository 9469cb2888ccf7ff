import { createHash, timingSafeEqual } from 'node:crypto';

/** Who may use the console: an admin changes things, a viewer may only look. */
export type ConsoleRole = 'admin' | 'viewer';

/**
 * The credentials the console exchanges for a session: ADMIN_API_KEY (admin) and, when set,
 * ADMIN_VIEWER_KEY (viewer). Compared as SHA-256 digests with timingSafeEqual, so neither the time
 * taken nor an early exit tells how much of a guess matched; the secrets are never kept in the clear here.
 */
export class ConsoleCredentials {
  private readonly admin: Buffer;
  private readonly viewer: Buffer | undefined;

  constructor(adminKey: string, viewerKey: string | undefined) {
    this.admin = digest(adminKey);
    this.viewer = viewerKey === undefined ? undefined : digest(viewerKey);
  }

  roleOf(presented: string): ConsoleRole | undefined {
    const d = digest(presented);
    // Both compared every time: which one matched does not show in the time taken.
    const isAdmin = timingSafeEqual(d, this.admin);
    const isViewer = this.viewer !== undefined && timingSafeEqual(d, this.viewer);
    return isAdmin ? 'admin' : isViewer ? 'viewer' : undefined;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
