import type { SharedFlights, SharedJoin, SharedPublisher } from '../pipeline/coalesce/shared-flights.js';
import type { FlightHead } from '../pipeline/coalesce/flight.js';
import type { Publisher, RemoteFlights } from './remote-flights.js';

/** The SharedFlights port over RemoteFlights. */
export class RemoteSharedFlights implements SharedFlights {
  constructor(private readonly remote: RemoteFlights) {}

  async join(key: string, signal: AbortSignal): Promise<SharedJoin> {
    const decision = await this.remote.decide(key);
    if (decision.role === 'local') return decision;
    if (decision.role === 'leader') return { role: 'leader', publisher: wrap(decision.publisher, false) };
    const followed = await this.remote.follow(key, decision, signal);
    if ('head' in followed) return { role: 'follower', answer: followed };
    if (followed.role === 'takeover') return { role: 'leader', publisher: wrap(followed.publisher, true) };
    return followed;
  }
}

function wrap(publisher: Publisher, takeover: boolean): SharedPublisher {
  return {
    takeover,
    head: (head: FlightHead) => publisher.head(head),
    chunk: (chunk: Buffer) => publisher.chunk(chunk),
    end: () => publisher.end(),
    fail: (error: unknown) => publisher.fail(error),
    abandon: () => publisher.abandon(),
    watchListeners: () => undefined,
  };
}
