import type { Registry } from 'prom-client';
import type { Price } from '../core/pricing.js';
import type { Logger } from '../observability/logger.js';
import { LocalBudgetCounters } from './budget-counters.js';
import { BudgetMetrics } from './budget-metrics.js';
import { Budgets, type BudgetFailMode, type SpendSource } from './budgets.js';
import { costEstimator } from './cost-estimate.js';
import { CallGovernance } from './govern.js';
import { KeyLimits, LocalConcurrencySlots, LocalWindowCounters, RedisWindowCounters } from './key-limits.js';
import { LedgerWriter, type LedgerSink, type LedgerWriterOptions } from './ledger-writer.js';
import { RedisBudgetCounters, type RedisCommands } from './redis-budget-counters.js';
import type { SupervisorCounters } from './supervisor-counters.js';

export type { SpendSource } from './budgets.js';
export type { LedgerSink } from './ledger-writer.js';

/**
 * The store's ports admission needs (part A of issue 26 implements them; the server wires them):
 * `spend` (SpendSource: spend recorded since an instant, per key or team, from the ledger) and
 * `ledger` (LedgerSink: durable batch insert of ledger rows).
 */
export interface AdmissionPorts {
  readonly spend: SpendSource;
  readonly ledger: LedgerSink | undefined;
}

export interface AdmissionSettings {
  readonly failMode: BudgetFailMode;
  readonly pricing: Record<string, Price>;
  readonly upstreamPricing: ReadonlyMap<string, Record<string, Price>>;
  readonly ledger?: LedgerWriterOptions;
}

export interface Admission {
  readonly calls: CallGovernance;
  readonly budgets: Budgets;
  readonly keyLimits: KeyLimits;
  readonly ledger: LedgerWriter | undefined;
  /** Flushes the ledger within `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
}

/**
 * Governance for one instance: budgets on Redis when `redis` is given (one connection of its own,
 * a failure domain), else in the supervisor with WORKERS > 1 (`supervisor`), else in process;
 * per-key minute windows likewise (falling back to this process's counts while Redis or the
 * supervisor cannot be asked); the ledger writer over the store's sink.
 */
export function startAdmission(
  ports: AdmissionPorts,
  settings: AdmissionSettings,
  redis: RedisCommands | undefined,
  registry: Registry,
  logger: Logger,
  /** WORKERS > 1: the counters the supervisor keeps for every worker (supervisor-counters.ts): key slots, and without Redis budgets and windows. */
  supervisor?: SupervisorCounters,
): Admission {
  const metrics = new BudgetMetrics(registry);
  const budgets = new Budgets({
    counters: redis !== undefined ? new RedisBudgetCounters(redis) : (supervisor ?? new LocalBudgetCounters()),
    spend: ports.spend,
    failMode: settings.failMode,
    metrics,
    logger,
  });
  const local = new LocalWindowCounters();
  const windows = redis !== undefined ? new RedisWindowCounters(redis, local) : (supervisor?.windows(local) ?? local);
  const keyLimits = new KeyLimits(windows, metrics, local, Date.now, supervisor?.slots(new LocalConcurrencySlots()));
  const ledger = ports.ledger === undefined ? undefined : new LedgerWriter(ports.ledger, metrics, logger, settings.ledger);
  const calls = new CallGovernance({ budgets, estimator: costEstimator(settings.pricing, settings.upstreamPricing), ledger, keyLimits, metrics });
  return { calls, budgets, keyLimits, ledger, close: async (deadlineMs) => ledger?.close(deadlineMs) };
}
