/**
 * The upstream attempts one client call may still make (FAILOVER_MAX_ATTEMPTS), across failover
 * and retries together. The route creates one per call and hands it inward on the call; the
 * transport spends one for every attempt it makes (credentials, connection, request), and nothing
 * else sends: so no call makes more attempts than the limit, whatever the retry settings. The route
 * and the retry interceptor read `left` to decide whether another attempt may follow; a move past
 * an open breaker never reaches the transport and spends nothing.
 */
export class AttemptLimit {
  private remaining: number;

  constructor(max: number) {
    this.remaining = max;
  }

  /** Attempts this call may still make. */
  get left(): number {
    return this.remaining;
  }

  /** Spends one attempt; false (and nothing spent) when none is left: the caller must not send. */
  take(): boolean {
    if (this.remaining <= 0) return false;
    this.remaining--;
    return true;
  }
}
