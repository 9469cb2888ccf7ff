import { Flight, type FlightLimits } from './flight.js';

/**
 * Singleflight for HTTP calls: at most one joinable flight per key. `lead` registers a new flight
 * synchronously (before any await), so two requests arriving in the same tick can never both lead.
 * An entry is deleted only while the map still holds that same flight (identity-checked), so a
 * finishing flight never removes its successor. Bounded by the requests in progress
 * (MAX_CONCURRENT_REQUESTS): every entry has at least one live subscriber or is being closed.
 */
export class FlightGroup {
  private readonly flights = new Map<string, Flight>();
  private readonly limits: FlightLimits;

  constructor(limits: FlightLimits) {
    this.limits = limits;
  }

  /** Flights currently taking joiners. */
  get size(): number {
    return this.flights.size;
  }

  /** Clients listening to joinable flights right now (walks the map: for gauges and tests, not the hot path). */
  subscribers(): number {
    let total = 0;
    for (const flight of this.flights.values()) total += flight.subscriberCount;
    return total;
  }

  /** The joinable flight for `key`, if any. */
  find(key: string): Flight | undefined {
    const flight = this.flights.get(key);
    return flight?.joinable === true ? flight : undefined;
  }

  /** Registers a new flight for `key`, replacing any that no longer takes joiners. */
  lead(key: string): Flight {
    const flight = new Flight(key, this.limits);
    this.flights.set(key, flight);
    flight.onClosedToJoiners = () => {
      this.forget(key, flight);
    };
    return flight;
  }

  /** Removes `flight` from the map if it is still the one registered for `key`. */
  forget(key: string, flight: Flight): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }

  /** A flight that is not shared (coalescing off or not applicable): same pump, no registration, no replay. */
  solo(key = ''): Flight {
    return new Flight(key, { ...this.limits, maxReplayBytes: 0 });
  }
}
