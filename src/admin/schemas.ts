import { z } from 'zod';
import { SPEND_GROUPS } from '../governance/store.js';

/**
 * The admin API's JSON, declared once as zod schemas: requests are validated with them (`.strict()`:
 * an unknown field is refused, naming it), and the OpenAPI document (openapi.ts) is generated from
 * them. Money is USD (decimal) here and micro-dollars in the store; times are ISO 8601 here and epoch
 * milliseconds in the store (convert.ts does both ways).
 */

const MAX_USD = 1_000_000_000;
const MAX_TOKENS = 1_000_000_000_000;
const MAX_RATE = 1_000_000_000;

export const name = z.string().min(1).max(200);
const id = z.string().min(1).max(100);
const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).describe('ISO 8601 date-time (with offset) or date (UTC midnight)');

export const budget = z
  .object({
    period: z.enum(['day', 'week', 'month']).describe('UTC calendar period: day; week from Monday 00:00; month from the 1st'),
    usd: z.number().nonnegative().max(MAX_USD).optional().describe('spend allowed per period, in USD'),
    tokens: z.int().nonnegative().max(MAX_TOKENS).optional().describe('tokens allowed per period (input + output + cache writes + cache reads)'),
  })
  .strict();

/** At most one budget per period (a second for the same period would be ambiguous). */
export const budgets = z
  .array(budget)
  .max(3)
  .refine((list) => new Set(list.map((b) => b.period)).size === list.length, { error: 'at most one budget per period' })
  .refine((list) => list.every((b) => b.usd !== undefined || b.tokens !== undefined), { error: 'each budget needs usd or tokens (or both)' });

export const metadata = z
  .record(z.string().min(1).max(64), z.string().max(1024))
  .refine((m) => Object.keys(m).length <= 50, { error: 'at most 50 metadata entries' });

export const limits = z
  .object({
    models: z.array(z.string().min(1).max(200)).max(100).optional().describe('model ids, or prefixes ending in *, the key may call; absent: every model'),
    requests_per_minute: z.int().positive().max(MAX_RATE).optional(),
    tokens_per_minute: z.int().positive().max(MAX_TOKENS).optional(),
    max_concurrent: z.int().positive().max(MAX_RATE).optional(),
  })
  .strict();

export const teamCreate = z.object({ name, budgets: budgets.optional(), metadata: metadata.optional() }).strict();
export const teamPatch = z.object({ name: name.optional(), budgets: budgets.optional(), metadata: metadata.optional() }).strict();

export const keyCreate = z
  .object({
    team_id: id,
    name: name.optional(),
    user_id: id.optional(),
    limits: limits.optional(),
    budgets: budgets.optional(),
    metadata: metadata.optional(),
    expires_at: instant.optional(),
  })
  .strict();

export const keyPatch = z
  .object({
    name: name.optional(),
    user_id: id.nullable().optional().describe('null removes the user'),
    limits: limits.optional(),
    budgets: budgets.optional(),
    metadata: metadata.optional(),
    expires_at: instant.nullable().optional().describe('null: never expires'),
  })
  .strict();

export const spendQuery = z
  .object({
    groupBy: z.enum(SPEND_GROUPS),
    from: instant.optional().describe('inclusive'),
    to: instant.optional().describe('exclusive'),
    team: id.optional(),
    key: id.optional(),
    user: id.optional(),
    mode: z.string().max(64).optional(),
    model: z.string().max(200).optional(),
    upstream: z.string().max(200).optional(),
  })
  .strict();

// Answers (the OpenAPI document's response schemas; the route test checks answers against them).

const isoTime = z.string().describe('ISO 8601 date-time (UTC)');

export const teamOut = z.object({
  id: z.string(),
  name: z.string(),
  budgets: z.array(budget),
  metadata: z.record(z.string(), z.string()),
  created_at: isoTime,
  updated_at: isoTime,
});

export const keyOut = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('the first characters of the secret, to tell keys apart (never the secret)'),
  team_id: z.string(),
  user_id: z.string().nullable(),
  limits,
  budgets: z.array(budget),
  metadata: z.record(z.string(), z.string()),
  expires_at: isoTime.nullable(),
  created_at: isoTime,
  revoked_at: isoTime.nullable(),
  updated_at: isoTime,
});

export const issuedOut = z.object({
  key: keyOut,
  secret: z.string().describe('the key itself: shown this once, never stored (only its SHA-256)'),
});

export const spendOut = z.object({
  group_by: z.enum(SPEND_GROUPS),
  data: z.array(
    z.object({
      group: z.string().nullable(),
      requests: z.int(),
      cost_usd: z.number(),
      saved_usd: z.number(),
      input_tokens: z.int(),
      output_tokens: z.int(),
      cache_creation_input_tokens: z.int(),
      cache_read_input_tokens: z.int(),
    }),
  ),
});

export const listOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item) });

export const errorOut = z.object({
  type: z.literal('error'),
  error: z.object({ type: z.string(), message: z.string() }),
});
