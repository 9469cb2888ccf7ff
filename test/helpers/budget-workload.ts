import Anthropic from '@anthropic-ai/sdk';
import type { Price } from '../../src/core/pricing.js';
import { costEstimator } from '../../src/governance/cost-estimate.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { deferred } from './deferred.js';

/**
 * Issue 26's concurrency workload: TOTAL calls at once against one budget that fits 10 worst-case
 * calls. The first IDENTICAL plain calls share one prompt, the next IDENTICAL streamed ones another
 * (they coalesce); the rest are distinct, every other one streamed.
 */

export const BUDGET_MODEL = 'claude-sonnet-4-5';
export const TOTAL = 200;
export const IDENTICAL = 25;

export interface WorkloadCall {
  readonly stream: boolean;
  readonly prompt: string;
}

export function requestOf(i: number): WorkloadCall {
  if (i < IDENTICAL) return { stream: false, prompt: 'same-plain' };
  if (i < 2 * IDENTICAL) return { stream: true, prompt: 'same-strem' };
  return { stream: i % 2 === 0, prompt: `uniq-${String(i).padStart(5, '0')}` };
}

export const bodyOf = (r: WorkloadCall) => ({ model: BUDGET_MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: r.prompt }], ...(r.stream ? { stream: true as const } : {}) });

/** The largest worst case of the workload's calls and a budget of 10 of them (never 11 of any kind), in micro-dollars. */
export function tenWorstCases(pricing: Record<string, Price> = {}): { maxWorst: number; budget: number; minWorst: number } {
  const estimator = costEstimator(pricing, new Map());
  const worst = Array.from({ length: TOTAL }, (_, i) => estimator.worstCase('messages', BUDGET_MODEL, Buffer.from(JSON.stringify(bodyOf(requestOf(i))))).microUsd);
  const maxWorst = Math.max(...worst);
  return { maxWorst, budget: 10 * maxWorst, minWorst: Math.min(...worst) };
}

export interface Workload {
  /** Each call's end: answered, or refused with the SDK's PermissionDeniedError (403); anything else rejects. */
  readonly results: Promise<('answered' | 'refused')[]>;
  /** Calls refused so far. */
  readonly refused: () => number;
}

/** Fires the whole workload at once, call i through clients[i % clients.length]. */
export function fireWorkload(clients: readonly Anthropic[]): Workload {
  let refused = 0;
  const calls = Array.from({ length: TOTAL }, async (_, i): Promise<'answered' | 'refused'> => {
    const client = clients[i % clients.length] as Anthropic;
    const r = requestOf(i);
    try {
      if (r.stream) {
        const stream = await client.messages.create({ ...bodyOf(r), stream: true });
        for await (const _event of stream) continue;
      } else {
        await client.messages.create(bodyOf({ ...r, stream: false }));
      }
      return 'answered';
    } catch (err) {
      if (err instanceof Anthropic.PermissionDeniedError) {
        refused++;
        return 'refused';
      }
      throw err;
    }
  });
  return { results: Promise.all(calls), refused: () => refused };
}

export function sum<T>(rows: readonly T[], of: (row: T) => number): number {
  return rows.reduce((n, r) => n + of(r), 0);
}

/**
 * REDIS_COMMAND_TIMEOUT_MS for the two-instance budget tests: the default (250 ms) is a production deadline, and on a
 * loaded test machine a relay read past it fails a remote follower's stream (the designed fallback), which these
 * tests are not about.
 */
export const BUDGET_TEST_REDIS_DEADLINE_MS = 5_000;

/** A mock that holds every call until `release()`: calls pile up at the gateways, counted as they arrive. */
export async function heldMock(): Promise<{ mock: MockUpstream; arrived: () => number; release: () => void }> {
  const gate = deferred();
  let arrived = 0;
  const mock = await createMockUpstream({
    onRequest: async () => {
      arrived++;
      await gate.promise;
    },
  });
  return { mock, arrived: () => arrived, release: () => gate.resolve() };
}
