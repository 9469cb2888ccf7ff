import type { SqlClient } from './sql.js';

/**
 * The schema, as an ordered list of versions: version N is MIGRATIONS[N - 1]. A released version is
 * never edited; a change is a new entry at the end. `migrate` applies the missing ones at start-up,
 * all in one transaction, under an advisory lock: two instances starting together on one PostgreSQL
 * take turns, and the second finds the work done.
 *
 * Times are epoch milliseconds (bigint), money micro-dollars (bigint): sums are exact.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: teams, keys, the ledger.
  `
  -- One counter for every change a key cache must see (keys, and the teams they belong to).
  CREATE SEQUENCE governance_changes;

  CREATE TABLE teams (
    id          text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    budgets     jsonb NOT NULL DEFAULT '[]',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
  );

  CREATE TABLE keys (
    id          text PRIMARY KEY,
    -- SHA-256 hex of the secret (see keys-secret.ts); the secret itself is never stored.
    hash        text NOT NULL UNIQUE,
    prefix      text NOT NULL,
    name        text NOT NULL,
    team_id     text NOT NULL REFERENCES teams(id),
    user_id     text,
    limits      jsonb NOT NULL DEFAULT '{}',
    budgets     jsonb NOT NULL DEFAULT '[]',
    metadata    jsonb NOT NULL DEFAULT '{}',
    expires_at  bigint,
    created_at  bigint NOT NULL,
    revoked_at  bigint,
    updated_at  bigint NOT NULL,
    -- From governance_changes, bumped by every change to the key or its team (see store.ts, "change order").
    change_seq  bigint NOT NULL
  );
  CREATE INDEX keys_change_seq ON keys (change_seq);
  CREATE INDEX keys_team ON keys (team_id);

  CREATE TABLE ledger (
    id                            bigserial PRIMARY KEY,
    at                            bigint NOT NULL,
    request_id                    text NOT NULL,
    key_id                        text,
    team_id                       text,
    user_id                       text,
    mode                          text NOT NULL,
    model                         text,
    upstream                      text,
    status                        integer NOT NULL,
    source                        text NOT NULL,
    input_tokens                  bigint NOT NULL,
    output_tokens                 bigint NOT NULL,
    cache_creation_input_tokens   bigint NOT NULL,
    cache_read_input_tokens       bigint NOT NULL,
    cost_micro_usd                bigint NOT NULL,
    saved_micro_usd               bigint NOT NULL,
    latency_ms                    integer NOT NULL,
    claude_code_session           text
  );
  -- spendSince (per key, per team, from an instant) and querySpend's time range.
  CREATE INDEX ledger_key_at ON ledger (key_id, at);
  CREATE INDEX ledger_team_at ON ledger (team_id, at);
  CREATE INDEX ledger_at ON ledger (at);
  `,
];

/** pg_advisory_xact_lock id of the migration (an arbitrary constant: "cgw mig"). */
const MIGRATION_LOCK = 0x6367_776d_6967;

/** Applies every missing version; returns the versions applied now (empty when up to date). */
export async function migrate(db: SqlClient, migrations: readonly string[] = MIGRATIONS): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
    const rows = await tx.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations');
    const current = Number(rows[0]?.v ?? 0);
    if (current > migrations.length) {
      throw new Error(`the governance database is at schema version ${current}, newer than this gateway knows (${migrations.length}): upgrade the gateway`);
    }
    const applied: number[] = [];
    for (let version = current + 1; version <= migrations.length; version++) {
      // Several statements in one text: PostgreSQL's simple query protocol (no parameters) runs them all.
      await tx.query(migrations[version - 1] as string);
      await tx.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
      applied.push(version);
    }
    return applied;
  });
}
