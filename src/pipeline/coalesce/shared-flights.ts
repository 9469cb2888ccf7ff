import type { FlightHead, FlightSource } from './flight.js';

/**
 * The port through which a flight is shared with other gateway instances. `pipeline/` owns it;
 * `coordination/` (Redis) implements it. Nothing in `pipeline/` imports `coordination/`.
 *
 * Contract:
 * - `join` never throws and resolves within its own deadlines (a partition cannot hang a request):
 *   any trouble answers `local`, and the instance calls upstream on its own.
 * - `leader`: this instance makes the upstream call and publishes it. It must call exactly one of
 *   `end` / `fail` (or `abandon` when the process is going away).
 * - `follower`: another instance makes the call; `answer` relays it. Its body either yields every
 *   byte the leader received, in order, or throws (a gap, a lost leader, a lost Redis): never a body
 *   that looks whole but is not. `whole()`, asked once the body ended, is the leader's verdict on
 *   its answer (pipeline/reuse.ts): false until an end marked whole arrived.
 */
export interface SharedFlights {
  join(key: string, signal: AbortSignal): Promise<SharedJoin>;
}

export type SharedJoin =
  | { role: 'local' }
  | { role: 'leader'; publisher: SharedPublisher }
  | { role: 'follower'; answer: FlightSource; whole(): boolean };

export interface SharedPublisher {
  /** True when this instance took over from a leader that vanished before sending its head. */
  readonly takeover: boolean;
  head(head: FlightHead): void;
  chunk(chunk: Buffer): void;
  /** The body ended; `whole`: the answer may be reused (pipeline/reuse.ts), so followers may keep it too. */
  end(whole: boolean): void;
  fail(error: unknown): void;
  /** Stops heartbeats without publishing an end (this process is going away). */
  abandon(): void;
  /**
   * Remote listeners: `onChange(true)` while at least one follower on another instance still reads
   * this flight, `onChange(false)` when none does. While listening, the leading instance keeps the
   * upstream call running even after its own clients left.
   */
  watchListeners(onChange: (listening: boolean) => void): void;
  /**
   * Asked when this instance's last own client left (and again when `watchListeners` reports
   * false): true while a remote follower listens, so the call must go on; false once the claim was
   * released in the same atomic step, so no follower can join a call that is about to be aborted.
   * Without it a follower registering between two listener checks could see its call aborted.
   */
  stillListened(): Promise<boolean>;
}
