// First, as in main.ts: the gateway's V8 heap settings (allocation-site pretenuring off, src/v8-heap.ts) before
// any request code runs. Without it this process, and only it, ran with pretenuring on: V8 moved the per-request
// sites to the old generation, about 3x the bytes promoted per scavenge, which compare.js --governed counted as
// governance's cost.
import '../src/v8-heap.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { startGateway } from '../src/server.js';
import type { LedgerRow, Principal } from '../src/governance/model.js';

/**
 * A gateway for benchmarks/compare.ts `--governed`: this build with governance on (issue 26), every
 * request a governed key's: its principal attached after auth, a worst-case reservation on a key
 * and a team budget (never exhausted), the settle, the remaining-budget headers and a ledger row
 * into an in-memory sink that keeps nothing. What a database key's request adds over the static-key
 * path, short of the key lookup itself (the store's, part A: a cache hit in steady state).
 */
const principal: Principal = {
  keyId: 'key_bench',
  keyName: 'bench',
  teamId: 'team_bench',
  teamName: 'bench',
  userId: undefined,
  limits: {},
  // Amounts an operator sets (USD 10,000 a day for the key; USD 1,000,000 and 10 billion tokens a month for the
  // team): never exhausted by a run, and formatted in the headers as real remaining amounts are.
  keyBudgets: [{ period: 'day', microUsd: 10_000 * 1_000_000 }],
  teamBudgets: [{ period: 'month', microUsd: 1_000_000 * 1_000_000, tokens: 10_000_000_000 }],
  expiresAt: undefined,
};
let written = 0;
const config = loadConfig();
await startGateway(config, createLogger(config.logLevel), {
  admission: {
    spend: { spendSince: () => Promise.resolve({ microUsd: 0, tokens: 0 }) },
    ledger: {
      insertLedger: (rows: readonly LedgerRow[]) => {
        written += rows.length;
        return Promise.resolve();
      },
    },
    principalOf: () => principal,
  },
});
process.on('SIGTERM', () => process.exit(written >= 0 ? 0 : 1));
