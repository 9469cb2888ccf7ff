/**
 * The fields tests read of admin answers (the shapes are the OpenAPI document's; a field an answer
 * lacks reads as undefined at run time and fails the assertion that reads it).
 */
export interface AdminBody {
  readonly [field: string]: unknown;
  readonly id: string;
  readonly name: string;
  readonly secret: string;
  readonly revoked_at: string | null;
  readonly key: AdminBody;
  readonly data: AdminBody[];
  readonly error: { readonly type: string; readonly message: string };
}

/** A small client of the gateway's admin API for tests: JSON in, status and JSON out. */
export interface AdminAnswer {
  status: number;
  body: AdminBody;
  text: string;
}

export function adminClient(url: string, adminKey: string) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<AdminAnswer> => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: (parsed ?? {}) as AdminBody, text };
  };
  return {
    call,
    createTeam: async (name: string, extra: Record<string, unknown> = {}) => (await call('POST', '/admin/teams', { name, ...extra })).body as { id: string; name: string },
    createKey: async (teamId: string, extra: Record<string, unknown> = {}) => (await call('POST', '/admin/keys', { team_id: teamId, ...extra })).body as { key: { id: string }; secret: string },
  };
}

/**
 * A gateway that injects its own upstream key, with governance on a shared PostgreSQL: its admin
 * listener on a free port, keys polled every 100 ms. Tests add what they are about.
 */
export function postgresGovernedEnv(upstreamUrl: string, databaseUrl: string, adminKey: string): Record<string, string> {
  return {
    UPSTREAM_URL: upstreamUrl,
    ANTHROPIC_API_KEY: 'sk-ant-injected-0123456789',
    ADMIN_API_KEY: adminKey,
    ADMIN_PORT: '0',
    DATABASE_URL: databaseUrl,
    GOVERNANCE_POLL_MS: '100',
  };
}
