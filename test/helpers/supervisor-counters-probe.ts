import { LocalConcurrencySlots, LocalWindowCounters } from '../../src/governance/key-limits.js';
import { SupervisorCounters } from '../../src/governance/supervisor-counters.js';

/**
 * Forked with an IPC channel by test/unit/governance/supervisor-counters.test.ts, which plays the
 * supervisor: a worker's side of the counters asks it once for a reservation and once for a minute
 * window, then twice for the one slot of a key (keeping the first), with a 200 ms deadline each, and
 * sends back what came of each (the parent may answer or not). It exits holding its slot.
 */
const counters = new SupervisorCounters(200);
const line = { counter: 'key:k:day:0', limitMicroUsd: undefined, limitTokens: 100, expireAt: Date.now() + 86_400_000 };
const reserve = await counters
  .reserve({ id: 'r1', group: 'team', lines: [line], amount: { microUsd: 0, tokens: 30 }, now: Date.now(), expiresAt: Date.now() + 60_000, bases: new Map([[line.counter, { microUsd: 0, tokens: 50 }]]) })
  .then(
    (outcome) => outcome,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
const local = new LocalWindowCounters();
const added = await counters.windows(local).add('rpm:k:0', 3, Date.now() + 60_000);
const slots = counters.slots(new LocalConcurrencySlots());
const slot = (await slots.take('slot-key', 1)) !== undefined;
const again = (await slots.take('slot-key', 1)) !== undefined;
process.send?.({ probe: { reserve, added, local: local.getNow('rpm:k:0'), slot, again } }, () => process.disconnect());
