import type { Budget, KeyLimits, LedgerRow, Principal } from './model.js';
import { displayPrefix, keyHash, newId, newKeySecret } from './key-secret.js';
import { migrate } from './migrations.js';
import type { SqlClient, SqlQuery, SqlRow } from './sql.js';

/**
 * The governance store: teams, gateway keys and the spend ledger, in PostgreSQL (a shared server,
 * or PGlite in this process). One implementation over SqlClient; every value is a parameter.
 *
 * Change order: every write to a key or a team takes one transaction-scoped advisory lock before it
 * draws its number from `governance_changes`, and holds it until commit. Numbers are therefore drawn
 * in commit order, so a reader that has seen every change up to N will find every later change
 * above N: `keysChangedSince` never skips a change that committed late with a smaller number.
 * (Admin writes are rare; serializing them costs nothing that matters.)
 */

export type Metadata = Readonly<Record<string, string>>;

export interface Team {
  readonly id: string;
  readonly name: string;
  readonly budgets: readonly Budget[];
  readonly metadata: Metadata;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A key as listed: never its secret (not stored) nor its hash. */
export interface KeyRecord {
  readonly id: string;
  readonly name: string;
  /** The first characters of the secret, to tell keys apart in listings. */
  readonly prefix: string;
  readonly teamId: string;
  readonly userId: string | undefined;
  readonly limits: KeyLimits;
  readonly budgets: readonly Budget[];
  readonly metadata: Metadata;
  readonly expiresAt: number | undefined;
  readonly createdAt: number;
  readonly revokedAt: number | undefined;
  readonly updatedAt: number;
}

/** What creating or rotating a key returns: the secret, this once. */
export interface IssuedKey {
  readonly key: KeyRecord;
  readonly secret: string;
}

export interface TeamInput {
  readonly name: string;
  readonly budgets?: readonly Budget[] | undefined;
  readonly metadata?: Metadata | undefined;
}

export interface TeamPatch {
  readonly name?: string | undefined;
  readonly budgets?: readonly Budget[] | undefined;
  readonly metadata?: Metadata | undefined;
}

export interface KeyInput {
  readonly teamId: string;
  readonly name?: string | undefined;
  readonly userId?: string | undefined;
  readonly limits?: KeyLimits | undefined;
  readonly budgets?: readonly Budget[] | undefined;
  readonly metadata?: Metadata | undefined;
  readonly expiresAt?: number | undefined;
}

/** Fields absent are unchanged; `null` clears userId / expiresAt. */
export interface KeyPatch {
  readonly name?: string | undefined;
  readonly userId?: string | null | undefined;
  readonly limits?: KeyLimits | undefined;
  readonly budgets?: readonly Budget[] | undefined;
  readonly metadata?: Metadata | undefined;
  readonly expiresAt?: number | null | undefined;
}

/** One key as a key cache must hold it after a change. */
export interface KeyChange {
  /** SHA-256 hex of the key's current secret. */
  readonly hash: string;
  /** Revoked keys are listed too, so a cache drops them. */
  readonly revoked: boolean;
  readonly principal: Principal;
}

export interface KeyChanges {
  readonly changes: readonly KeyChange[];
  /** Pass it to the next call; equal to the argument when nothing changed. */
  readonly cursor: number;
  /** More changes wait beyond `limit`: call again at once. */
  readonly more: boolean;
}

export type SpendScope = 'key' | 'team';
export const SPEND_GROUPS = ['team', 'key', 'user', 'mode', 'model', 'upstream', 'day', 'session'] as const;
export type SpendGroup = (typeof SPEND_GROUPS)[number];

export interface SpendFilters {
  /** Epoch ms, inclusive. */
  readonly from?: number | undefined;
  /** Epoch ms, exclusive. */
  readonly to?: number | undefined;
  readonly teamId?: string | undefined;
  readonly keyId?: string | undefined;
  readonly userId?: string | undefined;
  readonly mode?: string | undefined;
  readonly model?: string | undefined;
  readonly upstream?: string | undefined;
}

export interface SpendRow {
  /** The group's value (a team id, a key id, a day YYYY-MM-DD, ...); null: rows without one. */
  readonly group: string | null;
  readonly requests: number;
  readonly costMicroUsd: number;
  readonly savedMicroUsd: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheCreationInputTokens: number;
  readonly cacheReadInputTokens: number;
}

export interface Spend {
  readonly microUsd: number;
  readonly tokens: number;
}

export type GovernanceProblem = 'team_not_found' | 'name_taken' | 'too_many_keys' | 'key_revoked';

/** A request the store refuses for a reason the caller can act on (the admin API answers 4xx). */
export class GovernanceStoreError extends Error {
  override readonly name = 'GovernanceStoreError';
  constructor(
    readonly problem: GovernanceProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface GovernanceStore {
  createTeam(input: TeamInput): Promise<Team>;
  listTeams(): Promise<Team[]>;
  getTeam(id: string): Promise<Team | undefined>;
  updateTeam(id: string, patch: TeamPatch): Promise<Team | undefined>;
  createKey(input: KeyInput): Promise<IssuedKey>;
  listKeys(filter?: { teamId?: string | undefined }): Promise<KeyRecord[]>;
  getKey(id: string): Promise<KeyRecord | undefined>;
  /** A new secret for the same key id (tenant, limits, ledger continue); the old secret stops working. */
  rotateKey(id: string): Promise<IssuedKey | undefined>;
  /** Idempotent: a revoked key stays revoked, with its first revocation time. */
  revokeKey(id: string): Promise<KeyRecord | undefined>;
  updateKey(id: string, patch: KeyPatch): Promise<KeyRecord | undefined>;
  /** Keys changed (created, rotated, revoked, updated, or their team updated) after `cursor` (0: all). */
  keysChangedSince(cursor: number, limit?: number): Promise<KeyChanges>;
  insertLedger(rows: readonly LedgerRow[]): Promise<void>;
  /** What a key or a team spent on upstream calls since `sinceMs` (reuses cost nothing and are not counted). */
  spendSince(scope: SpendScope, id: string, sinceMs: number): Promise<Spend>;
  querySpend(filters: SpendFilters, groupBy: SpendGroup): Promise<SpendRow[]>;
  close(): Promise<void>;
}

/** Live (unrevoked) keys at most: the key cache holds every one of them in memory. */
export const MAX_LIVE_KEYS = 100_000;
/** Groups querySpend returns at most. */
export const MAX_SPEND_GROUPS = 10_000;

/** pg_advisory_xact_lock id of governance writes (see "Change order" above). */
const CHANGE_LOCK = 0x6367_7763_6867;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
const optStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : v === null || v === undefined ? undefined : JSON.stringify(v));
/** jsonb arrives parsed from both drivers; text (if a driver ever returns it) is parsed here. */
const json = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function teamOf(row: SqlRow): Team {
  return {
    id: String(row.id),
    name: String(row.name),
    budgets: json<Budget[]>(row.budgets, []),
    metadata: json<Metadata>(row.metadata, {}),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

function keyOf(row: SqlRow): KeyRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    prefix: String(row.prefix),
    teamId: String(row.team_id),
    userId: optStr(row.user_id),
    limits: json<KeyLimits>(row.limits, {}),
    budgets: json<Budget[]>(row.budgets, []),
    metadata: json<Metadata>(row.metadata, {}),
    expiresAt: optNum(row.expires_at),
    createdAt: num(row.created_at),
    revokedAt: optNum(row.revoked_at),
    updatedAt: num(row.updated_at),
  };
}

const KEY_COLUMNS = 'id, name, prefix, team_id, user_id, limits, budgets, metadata, expires_at, created_at, revoked_at, updated_at';

/** Ledger columns in LedgerRow order (insertLedger binds them in this order). */
const LEDGER_COLUMNS = [
  'at', 'request_id', 'key_id', 'team_id', 'user_id', 'mode', 'model', 'upstream', 'status', 'source', 'input_tokens', 'output_tokens',
  'cache_creation_input_tokens', 'cache_read_input_tokens', 'cost_micro_usd', 'saved_micro_usd', 'latency_ms', 'claude_code_session',
] as const;

function ledgerValues(row: LedgerRow): unknown[] {
  return [
    row.at, row.requestId, row.keyId ?? null, row.teamId ?? null, row.userId ?? null, row.mode, row.model ?? null, row.upstream ?? null, row.status,
    row.source, row.inputTokens, row.outputTokens, row.cacheCreationInputTokens, row.cacheReadInputTokens, row.costMicroUsd, row.savedMicroUsd,
    Math.round(row.latencyMs), row.claudeCodeSession ?? null,
  ];
}

/** Rows per INSERT: 18 parameters each, well under PostgreSQL's 65,535 per statement. */
const LEDGER_ROWS_PER_INSERT = 1_000;

/** SQL of each group: a fixed table (the caller picks a name, never SQL). */
const GROUP_SQL: Readonly<Record<SpendGroup, string>> = {
  team: 'team_id',
  key: 'key_id',
  user: 'user_id',
  mode: 'mode',
  model: 'model',
  upstream: 'upstream',
  day: "to_char(to_timestamp(at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
  session: 'claude_code_session',
};

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

export class SqlGovernanceStore implements GovernanceStore {
  private constructor(
    private readonly db: SqlClient,
    private readonly now: () => number,
  ) {}

  /** Migrates the database to the newest schema, then serves it. */
  static async open(db: SqlClient, now: () => number = Date.now): Promise<SqlGovernanceStore> {
    await migrate(db);
    return new SqlGovernanceStore(db, now);
  }

  /** A write in change order (see the module comment): `work` gets the transaction and its change number. */
  private change<T>(work: (tx: SqlQuery, seq: number) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [CHANGE_LOCK]);
      const seq = num((await tx.query("SELECT nextval('governance_changes') AS seq"))[0]?.seq);
      return work(tx, seq);
    });
  }

  async createTeam(input: TeamInput): Promise<Team> {
    const now = this.now();
    try {
      const rows = await this.db.query(
        'INSERT INTO teams (id, name, budgets, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING *',
        [newId('team'), input.name, JSON.stringify(input.budgets ?? []), JSON.stringify(input.metadata ?? {}), now],
      );
      return teamOf(rows[0] as SqlRow);
    } catch (err) {
      if (isUniqueViolation(err)) throw new GovernanceStoreError('name_taken', 'a team with this name exists');
      throw err;
    }
  }

  async listTeams(): Promise<Team[]> {
    return (await this.db.query('SELECT * FROM teams ORDER BY created_at, id')).map(teamOf);
  }

  async getTeam(id: string): Promise<Team | undefined> {
    const row = (await this.db.query('SELECT * FROM teams WHERE id = $1', [id]))[0];
    return row === undefined ? undefined : teamOf(row);
  }

  async updateTeam(id: string, patch: TeamPatch): Promise<Team | undefined> {
    try {
      return await this.change(async (tx, seq) => {
        const rows = await tx.query(
          `UPDATE teams SET name = coalesce($2, name), budgets = coalesce($3, budgets), metadata = coalesce($4, metadata), updated_at = $5
           WHERE id = $1 RETURNING *`,
          [id, patch.name ?? null, patch.budgets === undefined ? null : JSON.stringify(patch.budgets), patch.metadata === undefined ? null : JSON.stringify(patch.metadata), this.now()],
        );
        if (rows[0] === undefined) return undefined;
        // Principals carry the team's name and budgets: every key of the team is a change to see.
        await tx.query('UPDATE keys SET change_seq = $2 WHERE team_id = $1', [id, seq]);
        return teamOf(rows[0]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new GovernanceStoreError('name_taken', 'a team with this name exists');
      throw err;
    }
  }

  async createKey(input: KeyInput): Promise<IssuedKey> {
    const secret = newKeySecret();
    const now = this.now();
    return this.change(async (tx, seq) => {
      if ((await tx.query('SELECT 1 FROM teams WHERE id = $1', [input.teamId]))[0] === undefined) {
        throw new GovernanceStoreError('team_not_found', 'no team has this id');
      }
      const live = num((await tx.query('SELECT count(*) AS n FROM keys WHERE revoked_at IS NULL'))[0]?.n);
      if (live >= MAX_LIVE_KEYS) throw new GovernanceStoreError('too_many_keys', `at most ${MAX_LIVE_KEYS} unrevoked keys: revoke unused ones first`);
      const id = newId('key');
      const rows = await tx.query(
        `INSERT INTO keys (id, hash, prefix, name, team_id, user_id, limits, budgets, metadata, expires_at, created_at, updated_at, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING ${KEY_COLUMNS}`,
        [
          id, keyHash(secret), displayPrefix(secret), input.name ?? id, input.teamId, input.userId ?? null, JSON.stringify(input.limits ?? {}),
          JSON.stringify(input.budgets ?? []), JSON.stringify(input.metadata ?? {}), input.expiresAt ?? null, now, seq,
        ],
      );
      return { key: keyOf(rows[0] as SqlRow), secret };
    });
  }

  async listKeys(filter: { teamId?: string | undefined } = {}): Promise<KeyRecord[]> {
    const rows =
      filter.teamId === undefined
        ? await this.db.query(`SELECT ${KEY_COLUMNS} FROM keys ORDER BY created_at, id`)
        : await this.db.query(`SELECT ${KEY_COLUMNS} FROM keys WHERE team_id = $1 ORDER BY created_at, id`, [filter.teamId]);
    return rows.map(keyOf);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const row = (await this.db.query(`SELECT ${KEY_COLUMNS} FROM keys WHERE id = $1`, [id]))[0];
    return row === undefined ? undefined : keyOf(row);
  }

  async rotateKey(id: string): Promise<IssuedKey | undefined> {
    const secret = newKeySecret();
    return this.change(async (tx, seq) => {
      const current = (await tx.query('SELECT revoked_at FROM keys WHERE id = $1 FOR UPDATE', [id]))[0];
      if (current === undefined) return undefined;
      if (current.revoked_at !== null && current.revoked_at !== undefined) throw new GovernanceStoreError('key_revoked', 'the key is revoked: create a new one');
      const rows = await tx.query(
        `UPDATE keys SET hash = $2, prefix = $3, updated_at = $4, change_seq = $5 WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
        [id, keyHash(secret), displayPrefix(secret), this.now(), seq],
      );
      return { key: keyOf(rows[0] as SqlRow), secret };
    });
  }

  async revokeKey(id: string): Promise<KeyRecord | undefined> {
    return this.change(async (tx, seq) => {
      const now = this.now();
      const rows = await tx.query(
        `UPDATE keys SET revoked_at = coalesce(revoked_at, $2), updated_at = $2, change_seq = $3 WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
        [id, now, seq],
      );
      return rows[0] === undefined ? undefined : keyOf(rows[0]);
    });
  }

  async updateKey(id: string, patch: KeyPatch): Promise<KeyRecord | undefined> {
    return this.change(async (tx, seq) => {
      const rows = await tx.query(
        `UPDATE keys SET
           name = coalesce($2, name),
           user_id = CASE WHEN $3::boolean THEN $4 ELSE user_id END,
           limits = coalesce($5, limits),
           budgets = coalesce($6, budgets),
           metadata = coalesce($7, metadata),
           expires_at = CASE WHEN $8::boolean THEN $9::bigint ELSE expires_at END,
           updated_at = $10,
           change_seq = $11
         WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
        [
          id,
          patch.name ?? null,
          patch.userId !== undefined,
          patch.userId ?? null,
          patch.limits === undefined ? null : JSON.stringify(patch.limits),
          patch.budgets === undefined ? null : JSON.stringify(patch.budgets),
          patch.metadata === undefined ? null : JSON.stringify(patch.metadata),
          patch.expiresAt !== undefined,
          patch.expiresAt ?? null,
          this.now(),
          seq,
        ],
      );
      return rows[0] === undefined ? undefined : keyOf(rows[0]);
    });
  }

  async keysChangedSince(cursor: number, limit = 5_000): Promise<KeyChanges> {
    const select = `SELECT k.id, k.hash, k.name, k.team_id, k.user_id, k.limits, k.budgets, k.expires_at, k.revoked_at, k.change_seq,
                           t.name AS team_name, t.budgets AS team_budgets
                    FROM keys k JOIN teams t ON t.id = k.team_id`;
    let rows = await this.db.query(`${select} WHERE k.change_seq > $1 ORDER BY k.change_seq, k.id LIMIT $2`, [cursor, limit]);
    const more = rows.length === limit;
    if (more) {
      // A team update gives all its keys one number: a page never ends inside such a run, or the
      // cursor would pass keys not yet read. The last run moves to the next page, or is read whole
      // when it fills this page (a team larger than a page; bounded by MAX_LIVE_KEYS).
      const last = num(rows[rows.length - 1]?.change_seq);
      rows = num(rows[0]?.change_seq) === last ? await this.db.query(`${select} WHERE k.change_seq = $1 ORDER BY k.id`, [last]) : rows.filter((row) => num(row.change_seq) < last);
    }
    let next = cursor;
    const changes = rows.map((row): KeyChange => {
      next = Math.max(next, num(row.change_seq));
      return {
        hash: String(row.hash),
        revoked: row.revoked_at !== null && row.revoked_at !== undefined,
        principal: {
          keyId: String(row.id),
          keyName: String(row.name),
          teamId: String(row.team_id),
          teamName: String(row.team_name),
          userId: optStr(row.user_id),
          limits: json<KeyLimits>(row.limits, {}),
          keyBudgets: json<Budget[]>(row.budgets, []),
          teamBudgets: json<Budget[]>(row.team_budgets, []),
          expiresAt: optNum(row.expires_at),
        },
      };
    });
    return { changes, cursor: next, more };
  }

  async insertLedger(rows: readonly LedgerRow[]): Promise<void> {
    for (let start = 0; start < rows.length; start += LEDGER_ROWS_PER_INSERT) {
      const chunk = rows.slice(start, start + LEDGER_ROWS_PER_INSERT);
      const params: unknown[] = [];
      const tuples = chunk.map((row) => {
        const values = ledgerValues(row);
        const base = params.length;
        params.push(...values);
        return `(${values.map((_, i) => `$${base + i + 1}`).join(', ')})`;
      });
      await this.db.query(`INSERT INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, params);
    }
  }

  async spendSince(scope: SpendScope, id: string, sinceMs: number): Promise<Spend> {
    const column = scope === 'key' ? 'key_id' : 'team_id';
    const row = (
      await this.db.query(
        `SELECT coalesce(sum(cost_micro_usd), 0) AS micro_usd,
                coalesce(sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens), 0) AS tokens
         FROM ledger WHERE ${column} = $1 AND at >= $2 AND source = 'upstream'`,
        [id, sinceMs],
      )
    )[0];
    return { microUsd: num(row?.micro_usd), tokens: num(row?.tokens) };
  }

  async querySpend(filters: SpendFilters, groupBy: SpendGroup): Promise<SpendRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown): void => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filters.from !== undefined) add('at >= ?', filters.from);
    if (filters.to !== undefined) add('at < ?', filters.to);
    if (filters.teamId !== undefined) add('team_id = ?', filters.teamId);
    if (filters.keyId !== undefined) add('key_id = ?', filters.keyId);
    if (filters.userId !== undefined) add('user_id = ?', filters.userId);
    if (filters.mode !== undefined) add('mode = ?', filters.mode);
    if (filters.model !== undefined) add('model = ?', filters.model);
    if (filters.upstream !== undefined) add('upstream = ?', filters.upstream);
    params.push(MAX_SPEND_GROUPS);
    const group = GROUP_SQL[groupBy];
    const rows = await this.db.query(
      `SELECT ${group} AS grp, count(*) AS requests, sum(cost_micro_usd) AS cost, sum(saved_micro_usd) AS saved,
              sum(input_tokens) AS input, sum(output_tokens) AS output,
              sum(cache_creation_input_tokens) AS cache_creation, sum(cache_read_input_tokens) AS cache_read
       FROM ledger ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
       GROUP BY 1 ORDER BY 1 NULLS LAST LIMIT $${params.length}`,
      params,
    );
    return rows.map((row) => ({
      group: optStr(row.grp) ?? null,
      requests: num(row.requests),
      costMicroUsd: num(row.cost),
      savedMicroUsd: num(row.saved),
      inputTokens: num(row.input),
      outputTokens: num(row.output),
      cacheCreationInputTokens: num(row.cache_creation),
      cacheReadInputTokens: num(row.cache_read),
    }));
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
