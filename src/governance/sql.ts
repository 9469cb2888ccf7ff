/**
 * The one thing the governance store needs of a database: run a parameterized statement, and run
 * several in one transaction. Two adapters: PGlite (PostgreSQL compiled to WASM, in this process, on
 * a local directory) and node-postgres (a shared PostgreSQL server, DATABASE_URL). Both speak the
 * same SQL dialect, so one set of migrations and queries serves both.
 *
 * Invariant: every statement passes values as parameters ($1, $2, ...); no value is ever spliced
 * into SQL text.
 */

export type SqlRow = Record<string, unknown>;

export interface SqlClient {
  /** Without `params`: the simple protocol (several statements in one text, as migrations are). */
  query(text: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  /** Runs `work` inside BEGIN ... COMMIT on one connection (ROLLBACK when it throws). */
  transaction<T>(work: (tx: SqlQuery) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A connection inside a transaction: statements only. */
export interface SqlQuery {
  query(text: string, params?: readonly unknown[]): Promise<SqlRow[]>;
}

/** `memory:` (nothing on disk: tests) or a directory PGlite creates and keeps its files in. */
export async function openPglite(dataDir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(dataDir === 'memory:' ? {} : { dataDir });
  type Runner = Pick<typeof db, 'query' | 'exec'>;
  const run = async (on: Runner, text: string, params: readonly unknown[] | undefined): Promise<SqlRow[]> => {
    if (params === undefined) return (await on.exec(text)).at(-1)?.rows ?? [];
    return (await on.query<SqlRow>(text, [...params])).rows;
  };
  return {
    query: (text, params) => run(db, text, params),
    transaction: (work) => db.transaction((tx) => work({ query: (text, params) => run(tx, text, params) })),
    close: () => db.close(),
  };
}

/** A pool of connections to the PostgreSQL server at `url` (postgres:// or postgresql://). */
export async function openPostgres(url: string, options: { max?: number; statementTimeoutMs?: number } = {}): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 4,
    connectionTimeoutMillis: 5_000,
    // A statement the server holds longer than this fails (the poll and the admin API never wait forever).
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    query_timeout: (options.statementTimeoutMs ?? 10_000) + 1_000,
  });
  // An idle connection the server drops must not crash the process: the next query gets a new one.
  pool.on('error', () => undefined);
  return {
    query: async (text, params) => (params === undefined ? await pool.query<SqlRow>(text) : await pool.query<SqlRow>(text, [...params])).rows,
    transaction: async (work) => {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async (text, params) => (params === undefined ? await client.query<SqlRow>(text) : await client.query<SqlRow>(text, [...params])).rows,
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
