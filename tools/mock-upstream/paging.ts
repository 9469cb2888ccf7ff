/** Cursor paging as the API's list endpoints do it: `limit` (1..1000), `after_id` or `before_id`. */

export interface Page<T> {
  data: T[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** The page, or an error message for a 400. `items` are in list order (newest first). */
export function page<T extends { id: string }>(items: readonly T[], query: URLSearchParams, defaultLimit = 20): Page<T> | string {
  const rawLimit = query.get('limit');
  const limit = rawLimit === null ? defaultLimit : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return 'limit: Input should be an integer from 1 to 1000';
  const after = query.get('after_id');
  const before = query.get('before_id');
  if (after !== null && before !== null) return 'after_id and before_id cannot be used together';
  let data: T[];
  let hasMore: boolean;
  if (before !== null) {
    const end = items.findIndex((m) => m.id === before);
    if (end < 0) return `before_id: unknown id ${before}`;
    const start = Math.max(0, end - limit);
    data = items.slice(start, end);
    hasMore = start > 0;
  } else {
    const start = after === null ? 0 : items.findIndex((m) => m.id === after) + 1;
    if (start === 0 && after !== null) return `after_id: unknown id ${after}`;
    data = items.slice(start, start + limit);
    hasMore = start + limit < items.length;
  }
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
