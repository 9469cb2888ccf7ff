import type { Cluster, Worker } from 'node:cluster';
import type { Store } from 'express-rate-limit';
import { ignoreSendError, SupervisorRequests } from '../core/supervisor-requests.js';
import { LocalBudgetCounters, type BudgetCounters, type ReserveOutcome, type ReserveRequest, type SettleRequest, type Used } from './budget-counters.js';
import { LocalWindowCounters, type ConcurrencySlots, type LocalConcurrencySlots, type SlotRelease, type WindowCounters } from './key-limits.js';

/**
 * WORKERS > 1: the keys' concurrency slots (maxConcurrent), and without Redis the budget counters, the
 * per-key minute windows and the RATE_LIMIT_RPM windows of this machine, live in the supervisor
 * (node:cluster's primary), one set for every worker, so a budget or a limit holds across the workers
 * as it does in one process. Kept in each worker, each would count only its own calls (after loading
 * the ledger's spend once): N workers could spend a budget N times over (measured: 694 tokens billed
 * against a budget of 400 with two), or run N times a key's concurrent calls.
 *
 * A worker asks over IPC; the supervisor answers each request in one synchronous turn of its event
 * loop (LocalBudgetCounters, LocalWindowCounters, a slot table), so a reservation or a slot stays
 * atomic across workers. Every wait has a deadline and the waits are bounded: a budget that cannot be
 * asked is unavailable (BUDGET_FAIL_MODE decides); a minute window or a slot that cannot be asked is
 * counted in the worker, as while Redis is down. With Redis (REDIS_URL) the budgets and windows live
 * there instead, shared by every instance; slots are per instance either way.
 */

/** How long a worker waits for the supervisor's answer. */
const SUPERVISOR_ANSWER_DEADLINE_MS = 1_000;
/** Requests one worker may have waiting at once; more fail at once. */
const MAX_WAITING = 10_000;
/** How often (at most) the supervisor drops minute windows that ended. */
const WINDOW_SWEEP_MS = 60_000;
/** Concurrency slots the supervisor holds at most (every worker's calls in progress): past it a take fails, and the worker counts alone. */
const MAX_SLOTS = 1_000_000;

/** Marks this module's IPC messages among others on the channel (the metrics', node's own). */
const CHANNEL = 'claude-gateway:counters';

/** A reservation as it crosses the channel: JSON has no Map, so the bases travel as entries. */
type WireReserve = Omit<ReserveRequest, 'bases'> & { readonly bases?: [string, Used][] | undefined };

type CounterCall =
  | { readonly op: 'reserve'; readonly request: WireReserve }
  | { readonly op: 'settle'; readonly request: SettleRequest }
  | { readonly op: 'add'; readonly key: string; readonly amount: number; readonly windowEnd: number }
  | { readonly op: 'get'; readonly key: string }
  /** `slot`: the worker's id for the slot, so a give after a lost answer frees exactly it (or nothing). */
  | { readonly op: 'take'; readonly key: string; readonly max: number; readonly slot: number }
  | { readonly op: 'give'; readonly slot: number };

type WorkerMessage = { readonly channel: typeof CHANNEL; readonly id: number; readonly call: CounterCall };
type SupervisorMessage = { readonly channel: typeof CHANNEL; readonly id: number; readonly value?: unknown; readonly error?: string };

function isOurs(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === CHANNEL;
}


/** The supervisor's side: answers every worker's counter requests. Returns a function that stops listening. */
export function serveSupervisorCounters(cluster: Cluster, now: () => number = Date.now): () => void {
  const budgets = new LocalBudgetCounters();
  const windows = new LocalWindowCounters();
  let sweptAt = now();
  /** Slots taken, by `<worker id>:<slot>`, and how many each key has. */
  const slots = new Map<string, string>();
  const taken = new Map<string, number>();
  const give = (slotId: string): void => {
    const key = slots.get(slotId);
    if (key === undefined) return;
    slots.delete(slotId);
    const left = (taken.get(key) ?? 1) - 1;
    if (left <= 0) taken.delete(key);
    else taken.set(key, left);
  };
  const answer = (worker: Worker, call: CounterCall): unknown => {
    switch (call.op) {
      case 'reserve': {
        const { bases, ...rest } = call.request;
        return budgets.reserveNow({ ...rest, bases: bases === undefined ? undefined : new Map(bases) });
      }
      case 'settle':
        budgets.settleNow(call.request);
        return null;
      case 'add': {
        const t = now();
        if (t - sweptAt >= WINDOW_SWEEP_MS) {
          sweptAt = t;
          windows.sweep(t);
        }
        return windows.addNow(call.key, call.amount, call.windowEnd);
      }
      case 'get':
        return windows.getNow(call.key);
      case 'take': {
        const n = taken.get(call.key) ?? 0;
        if (n >= call.max) return false;
        if (slots.size >= MAX_SLOTS) throw new Error(`${MAX_SLOTS} concurrency slots are taken`);
        slots.set(`${worker.id}:${call.slot}`, call.key);
        taken.set(call.key, n + 1);
        return true;
      }
      case 'give':
        give(`${worker.id}:${call.slot}`);
        return null;
    }
  };
  // A worker that exits gives back every slot it held: its calls ended with it.
  const onExit = (worker: Worker): void => {
    const prefix = `${worker.id}:`;
    for (const slotId of [...slots.keys()]) if (slotId.startsWith(prefix)) give(slotId);
  };
  const onMessage = (worker: Worker, message: unknown): void => {
    if (!isOurs(message)) return;
    const { id, call } = message as WorkerMessage;
    let reply: SupervisorMessage;
    try {
      reply = { channel: CHANNEL, id, value: answer(worker, call) };
    } catch (err) {
      reply = { channel: CHANNEL, id, error: err instanceof Error ? err.message : String(err) };
    }
    if (worker.isConnected()) worker.send(reply, undefined, ignoreSendError);
  };
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return () => {
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
  };
}

/**
 * A worker's side: budget counters and minute windows kept by the supervisor. `process.send` must
 * exist (a cluster worker). Minute windows fall back to `local` when the supervisor cannot be asked.
 */
export class SupervisorCounters implements BudgetCounters {
  private readonly requests: SupervisorRequests<unknown>;
  private nextSlot = 0;
  private readonly onMessage = (message: unknown): void => {
    if (!isOurs(message)) return;
    const { id, value, error } = message as SupervisorMessage;
    this.requests.settle(id, error === undefined ? value : new Error(`the supervisor's counters failed: ${error}`));
  };

  constructor(deadlineMs = SUPERVISOR_ANSWER_DEADLINE_MS) {
    this.requests = new SupervisorRequests<unknown>({
      deadlineMs,
      maxWaiting: MAX_WAITING,
      failure: (reason, ms, max) =>
        new Error(reason === 'deadline' ? `the supervisor's counters did not answer within ${ms} ms` : reason === 'full' ? `${max} requests to the supervisor's counters are already waiting` : 'the supervisor is gone'),
    });
    process.on('message', this.onMessage);
  }

  /** The minute windows, with `local` (this worker's) while the supervisor cannot be asked. */
  windows(local: LocalWindowCounters): WindowCounters {
    return {
      add: (key, amount, windowEnd) => (this.ask({ op: 'add', key, amount, windowEnd }) as Promise<number>).catch(() => local.add(key, amount, windowEnd)),
      get: (key) => (this.ask({ op: 'get', key }) as Promise<number>).catch(() => local.get(key)),
    };
  }

  /**
   * The keys' concurrency slots, counted by the supervisor for every worker, or by `local` (this
   * worker's) while it cannot be asked. A take whose answer was lost is given back all the same: the
   * supervisor frees that slot if it took it, and nothing else.
   */
  slots(local: LocalConcurrencySlots): ConcurrencySlots {
    return {
      take: async (key, max) => {
        const slot = this.nextSlot++;
        const give = (): void => void this.ask({ op: 'give', slot }).catch(() => undefined);
        let took: boolean;
        try {
          took = (await this.ask({ op: 'take', key, max, slot })) === true;
        } catch {
          give();
          return local.takeNow(key, max);
        }
        if (!took) return undefined;
        let given = false;
        const release: SlotRelease = () => {
          if (given) return;
          given = true;
          give();
        };
        return release;
      },
    };
  }

  /**
   * An express-rate-limit store over the supervisor's windows (RATE_LIMIT_RPM): fixed windows of the
   * limiter's `windowMs`, counted for every worker, or in this worker while the supervisor cannot be
   * asked. Written here rather than taken from @express-rate-limit/cluster-memory-store, whose
   * supervisor side sends its answers without handling a worker that is gone and whose worker side
   * has no fallback: one channel, one deadline and one fallback serve budgets and limits alike.
   */
  rateLimitStore(local: LocalWindowCounters, now: () => number = Date.now): Store {
    const windows = this.windows(local);
    let windowMs = 60_000;
    const windowOf = (key: string): { name: string; end: number } => {
      const start = Math.floor(now() / windowMs) * windowMs;
      return { name: `rl:${key}:${start}`, end: start + windowMs };
    };
    return {
      localKeys: false,
      prefix: 'supervisor:',
      init: (options) => {
        windowMs = options.windowMs;
      },
      increment: async (key) => {
        const { name, end } = windowOf(key);
        return { totalHits: await windows.add(name, 1, end), resetTime: new Date(end) };
      },
      decrement: async (key) => {
        const { name, end } = windowOf(key);
        await windows.add(name, -1, end);
      },
      resetKey: async (key) => {
        const { name, end } = windowOf(key);
        const hits = await windows.get(name);
        if (hits > 0) await windows.add(name, -hits, end);
      },
    };
  }

  reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const { bases, ...rest } = request;
    return this.ask({ op: 'reserve', request: { ...rest, bases: bases === undefined ? undefined : [...bases] } }) as Promise<ReserveOutcome>;
  }

  async settle(request: SettleRequest): Promise<void> {
    await this.ask({ op: 'settle', request });
  }

  private ask(call: CounterCall): Promise<unknown> {
    return this.requests.ask((id): WorkerMessage => ({ channel: CHANNEL, id, call }));
  }
}
