import { Flight, type FlightLimits, type FlightRegistry } from './flight.js';

/**
 * A map entry: the map never holds a flight directly, and a flight holds no closure of the group's.
 * Measured under load (benchmarks/HISTORY.md, 2026-11-24 night session): with either, a finished
 * flight's whole request (call, answer head, body, meter) stayed reachable from old-generation
 * objects (a retired backing table of the map, the per-flight closure) across young-generation
 * collections, so every request's garbage was copied and promoted: about 4 KB per request, most of
 * the gateway's GC time. The slot is emptied before its entry is deleted, so whatever still points
 * at it reaches nothing of the request.
 */
interface Slot {
  flight: Flight | undefined;
}

/** One joinable flight as the console shows it (FlightGroup.describe). */
export interface FlightView {
  readonly mode: string | undefined;
  readonly model: string | undefined;
  readonly tenant: string | undefined;
  readonly subscribers: number;
  readonly bytes: number;
  readonly ageSeconds: number | undefined;
}

/** Flights described at most: the console's page shows the first of them. */
export const MAX_DESCRIBED_FLIGHTS = 200;

/**
 * Singleflight for HTTP calls: at most one joinable flight per key. `lead` registers a new flight
 * synchronously (before any await), so two requests arriving in the same tick can never both lead.
 * An entry is deleted only while the map still holds that same flight (identity-checked), so a
 * finishing flight never removes its successor. Bounded by the requests in progress
 * (MAX_CONCURRENT_REQUESTS): every entry has at least one live subscriber or is being closed, or
 * waits for a rejoin (COALESCE_REJOIN_MS, at most `maxRejoinWaiting` at once).
 */
export interface FlightGroupOptions extends FlightLimits {
  /** Flights that may wait for a rejoin (COALESCE_REJOIN_MS) at once; past it, an abandoned call is aborted at once. */
  maxRejoinWaiting?: number;
}

export class FlightGroup implements FlightRegistry {
  private readonly flights = new Map<string, Slot>();
  private readonly limits: FlightLimits;
  private readonly maxRejoinWaiting: number;
  /** Flights nobody listens to that wait for a rejoin now (each also in `flights` while it takes joiners). */
  private rejoinWaiting = 0;

  constructor(options: FlightGroupOptions) {
    const { maxRejoinWaiting, ...limits } = options;
    this.limits = limits;
    this.maxRejoinWaiting = maxRejoinWaiting ?? 1_000;
  }

  /** Flights waiting for a rejoin right now (for tests and gauges). */
  get waitingForRejoin(): number {
    return this.rejoinWaiting;
  }

  reserveRejoin(): boolean {
    if (this.rejoinWaiting >= this.maxRejoinWaiting) return false;
    this.rejoinWaiting++;
    return true;
  }

  releaseRejoin(): void {
    this.rejoinWaiting--;
  }

  /** Flights currently taking joiners. */
  get size(): number {
    return this.flights.size;
  }

  /** Clients listening to joinable flights right now (walks the map: for gauges and tests, not the hot path). */
  subscribers(): number {
    let total = 0;
    for (const slot of this.flights.values()) total += slot.flight?.subscriberCount ?? 0;
    return total;
  }

  /** The joinable flights now, at most MAX_DESCRIBED_FLIGHTS (walks the map: for the console, not the hot path). */
  describe(now = performance.now()): FlightView[] {
    const views: FlightView[] = [];
    for (const slot of this.flights.values()) {
      const flight = slot.flight;
      if (flight === undefined || !flight.joinable) continue;
      if (views.length >= MAX_DESCRIBED_FLIGHTS) break;
      const label = flight.label;
      views.push({
        mode: label?.mode,
        model: label?.model,
        tenant: label?.tenant,
        subscribers: flight.subscriberCount,
        bytes: flight.bytesSoFar,
        ageSeconds: label === undefined ? undefined : Math.max(0, (now - label.ledAt) / 1000),
      });
    }
    return views;
  }

  /** The joinable flight for `key`, if any. */
  find(key: string): Flight | undefined {
    const flight = this.flights.get(key)?.flight;
    return flight?.joinable === true ? flight : undefined;
  }

  /** Registers a new flight for `key`, replacing any that no longer takes joiners. */
  lead(key: string): Flight {
    const flight = new Flight(key, this.limits, this);
    const previous = this.flights.get(key);
    if (previous !== undefined) previous.flight = undefined;
    this.flights.set(key, { flight });
    return flight;
  }

  /** Removes `flight` from the map if it is still the one registered for `key`. */
  forget(key: string, flight: Flight): void {
    const slot = this.flights.get(key);
    if (slot?.flight !== flight) return;
    slot.flight = undefined;
    this.flights.delete(key);
  }

  /** A flight that is not shared (coalescing off or not applicable): same pump, no registration, no replay. */
  solo(key = ''): Flight {
    return new Flight(key, { ...this.limits, maxReplayBytes: 0 });
  }
}
