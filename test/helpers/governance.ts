import type { IncomingMessage } from 'node:http';
import type { LedgerRow, Principal } from '../../src/governance/model.js';
import type { LedgerSink, SpendSource } from '../../src/governance/admission.js';

/**
 * In-memory fakes of the governance store's ports (issue 26, part A implements them over the
 * database) and a principal picked by a test header, standing in for the store's auth.
 */

export class MemoryLedger implements LedgerSink, SpendSource {
  readonly rows: LedgerRow[] = [];
  down = false;
  insertLedger(rows: readonly LedgerRow[]): Promise<void> {
    if (this.down) return Promise.reject(new Error('store unreachable'));
    this.rows.push(...rows);
    return Promise.resolve();
  }
  spendSince(scope: 'key' | 'team', id: string, sinceMs: number): Promise<{ microUsd: number; tokens: number }> {
    let microUsd = 0;
    let tokens = 0;
    for (const r of this.rows) {
      if (r.at < sinceMs || (scope === 'key' ? r.keyId : r.teamId) !== id) continue;
      microUsd += r.costMicroUsd;
      if (r.source === 'upstream') tokens += r.inputTokens + r.outputTokens + r.cacheCreationInputTokens + r.cacheReadInputTokens;
    }
    return Promise.resolve({ microUsd, tokens });
  }
}

export const PRINCIPAL_HEADER = 'x-test-principal';

export function testPrincipal(over: Partial<Principal> = {}): Principal {
  return {
    keyId: 'key_alice',
    keyName: 'alice-laptop',
    teamId: 'team_platform',
    teamName: 'platform',
    userId: 'alice',
    limits: {},
    keyBudgets: [],
    teamBudgets: [],
    expiresAt: undefined,
    ...over,
  };
}

/** `principalOf` for GatewayOptions.governance: the principal named by the test header, if any. */
export function principalsByHeader(principals: Record<string, Principal>): (req: IncomingMessage) => Principal | undefined {
  return (req) => {
    const name = req.headers[PRINCIPAL_HEADER];
    return typeof name === 'string' && Object.hasOwn(principals, name) ? principals[name] : undefined;
  };
}
