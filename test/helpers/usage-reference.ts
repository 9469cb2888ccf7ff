/** What a usage meter reads of a whole answer: its model, id and token counts. */
export interface UsageFacts {
  model: string | undefined;
  id: string | undefined;
  hasUsage: boolean;
  usage: { input: number; output: number; cache_creation: number; cache_read: number };
}

/** The reference the meter's scans are held to: JSON.parse of the whole answer, as the meter read it before them. */
export function parsedUsageFacts(text: string): UsageFacts {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  const facts: UsageFacts = { model: undefined, id: undefined, hasUsage: false, usage: { input: 0, output: 0, cache_creation: 0, cache_read: 0 } };
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return facts;
  }
  if (typeof body.model === 'string') facts.model = body.model;
  if (typeof body.id === 'string') facts.id = body.id;
  if (body.usage !== undefined) {
    facts.hasUsage = true;
    const u = body.usage as Record<string, unknown> | null;
    if (u !== null) {
      if (u.input_tokens !== undefined) facts.usage.input = num(u.input_tokens);
      if (u.output_tokens !== undefined) facts.usage.output = num(u.output_tokens);
      if (u.cache_creation_input_tokens !== undefined) facts.usage.cache_creation = num(u.cache_creation_input_tokens);
      if (u.cache_read_input_tokens !== undefined) facts.usage.cache_read = num(u.cache_read_input_tokens);
    }
  }
  return facts;
}
