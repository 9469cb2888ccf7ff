/**
 * A reading taken at most once per `minIntervalMs` however many pages ask: callers within the
 * interval share the last one (a failed one is not kept, so the next call tries again).
 */
export function oncePer<T>(minIntervalMs: number, read: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const at = now();
    if (last !== undefined && at - last.at < minIntervalMs) return last.value;
    const value = read();
    const taken = { at, value };
    last = taken;
    value.catch(() => {
      if (last === taken) last = undefined;
    });
    return value;
  };
}
