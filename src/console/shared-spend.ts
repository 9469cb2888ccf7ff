import type { AdminDispatch } from '../admin/dispatch.js';
import { oncePer } from './once-per.js';

/** Distinct spend queries shared at once (periods × groupings × filters the pages ask); the oldest out first. */
const MAX_SHARED_QUERIES = 64;

/**
 * The admin dispatch as the console uses it, with every spend query (GET /admin/spend?...) answered at
 * most once per `intervalMs` for all open pages together, as the metrics and budget readings are: the
 * Spend page polls six ledger GROUP BY queries every 2 s, so N open pages would otherwise cost N times
 * that. Other reads and every change go straight through (a list read right after a change is fresh).
 */
export function sharedSpendReads(dispatch: AdminDispatch, intervalMs: number): AdminDispatch {
  const shared = new Map<string, ReturnType<typeof oncePer<Awaited<ReturnType<AdminDispatch>>>>>();
  return (req, pathname, search) => {
    if (req.method !== 'GET' || pathname !== '/admin/spend') return dispatch(req, pathname, search);
    const key = search.toString();
    let read = shared.get(key);
    if (read === undefined) {
      if (shared.size >= MAX_SHARED_QUERIES) shared.delete(shared.keys().next().value as string);
      read = oncePer(intervalMs, () => dispatch(req, pathname, search));
      shared.set(key, read);
    }
    return read();
  };
}
