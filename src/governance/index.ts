import { mkdirSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { KeyCache } from './key-cache.js';
import { openPglite, openPostgres, type SqlClient } from './sql.js';
import { SqlGovernanceStore, type GovernanceStore } from './store.js';

export interface GovernanceSettings {
  /** PostgreSQL shared by every instance; undefined: PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** PGlite's directory, or `memory:` (nothing kept: tests). */
  readonly dataDir: string;
  readonly pollMs: number;
}

export interface Governance {
  readonly store: GovernanceStore;
  readonly keys: KeyCache;
  close(): Promise<void>;
}

/** Opens the store (migrating it), loads every key into memory and starts polling for changes. */
export async function startGovernance(settings: GovernanceSettings, logger: Logger, registry: Registry): Promise<Governance> {
  let db: SqlClient;
  if (settings.databaseUrl !== undefined) db = await openPostgres(settings.databaseUrl);
  else {
    if (settings.dataDir !== 'memory:') mkdirSync(settings.dataDir, { recursive: true });
    db = await openPglite(settings.dataDir);
  }
  let store: GovernanceStore;
  try {
    store = await SqlGovernanceStore.open(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  const keys = new KeyCache(store, { pollMs: settings.pollMs, logger, registry });
  try {
    await keys.start();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  logger.info({ store: settings.databaseUrl !== undefined ? 'postgresql' : 'pglite', keys: keys.size, pollMs: settings.pollMs }, 'governance store ready');
  return {
    store,
    keys,
    close: async () => {
      await keys.stop();
      await store.close();
    },
  };
}
