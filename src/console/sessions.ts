import { randomBytes } from 'node:crypto';
import type { ConsoleRole } from './credentials.js';

export interface ConsoleSession {
  readonly role: ConsoleRole;
  /** The token every change must carry (x-csrf-token): a page of another origin cannot read it. */
  readonly csrf: string;
  readonly expiresAt: number;
}

export interface SessionLimits {
  /** A session's lifetime from its login, whatever its use. */
  readonly ttlMs: number;
  /** Sessions held at most: past it the oldest is logged out. */
  readonly max: number;
  readonly now?: () => number;
}

/**
 * Console sessions, in this process's memory: an opaque random id (the cookie) → role, CSRF token
 * and expiry. Bounded by count (oldest out) and by time. A restart logs everyone out, which is the
 * safe side for an admin surface; several instances each hold their own (log in where you look).
 */
export class SessionStore {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly now: () => number;

  constructor(private readonly limits: SessionLimits) {
    this.now = limits.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  open(role: ConsoleRole): { id: string; session: ConsoleSession } {
    while (this.sessions.size >= this.limits.max) this.sessions.delete(this.sessions.keys().next().value as string);
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = { role, csrf: randomBytes(32).toString('base64url'), expiresAt: this.now() + this.limits.ttlMs };
    this.sessions.set(id, session);
    return { id, session };
  }

  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  close(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }
}
