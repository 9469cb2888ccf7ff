import type { z } from 'zod';
import type { GovernanceStore } from '../governance/store.js';
import { budgetsIn, keyJson, limitsIn, spendJson, teamJson, toEpochMs } from './convert.js';
import { errorOut, issuedOut, keyCreate, keyOut, keyPatch, listOf, spendOut, spendQuery, teamCreate, teamOut, teamPatch } from './schemas.js';

/** An answer: status and JSON body. */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export interface RouteInput {
  readonly params: Readonly<Record<string, string>>;
  /** The validated body (or query, for GET routes with a query schema). */
  readonly input: unknown;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** OpenAPI form: /admin/keys/{id}. */
  readonly path: string;
  readonly summary: string;
  readonly body?: z.ZodType | undefined;
  readonly query?: z.ZodType | undefined;
  /** Documented answers besides 400/401 (every route has those). */
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema: z.ZodType }>>;
  handle(store: GovernanceStore, request: RouteInput): Promise<Answer>;
}

export const notFound = (what: string): Answer => ({ status: 404, body: { type: 'error', error: { type: 'not_found_error', message: `no ${what} has this id` } } });

const NOT_FOUND = (what: string) => ({ description: `no ${what} has this id`, schema: errorOut });
const CONFLICT = (what: string) => ({ description: what, schema: errorOut });

/** Every admin route: the router serves it and the OpenAPI document describes it, from this one table. */
export const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    path: '/admin/teams',
    summary: 'Create a team',
    body: teamCreate,
    responses: { 201: { description: 'the team', schema: teamOut }, 409: CONFLICT('a team with this name exists') },
    handle: async (store, { input }) => {
      const body = input as z.infer<typeof teamCreate>;
      const team = await store.createTeam({ name: body.name, budgets: budgetsIn(body.budgets ?? []), metadata: body.metadata });
      return { status: 201, body: teamJson(team) };
    },
  },
  {
    method: 'GET',
    path: '/admin/teams',
    summary: 'List teams',
    responses: { 200: { description: 'every team', schema: listOf(teamOut) } },
    handle: async (store) => ({ status: 200, body: { data: (await store.listTeams()).map(teamJson) } }),
  },
  {
    method: 'PATCH',
    path: '/admin/teams/{id}',
    summary: "Change a team's name, budgets or metadata (fields absent stay)",
    body: teamPatch,
    responses: { 200: { description: 'the team', schema: teamOut }, 404: NOT_FOUND('team'), 409: CONFLICT('a team with this name exists') },
    handle: async (store, { params, input }) => {
      const body = input as z.infer<typeof teamPatch>;
      const team = await store.updateTeam(params.id as string, { name: body.name, budgets: body.budgets === undefined ? undefined : budgetsIn(body.budgets), metadata: body.metadata });
      return team === undefined ? notFound('team') : { status: 200, body: teamJson(team) };
    },
  },
  {
    method: 'POST',
    path: '/admin/keys',
    summary: 'Create a key (its secret is in this answer only)',
    body: keyCreate,
    responses: { 201: { description: 'the key and its secret', schema: issuedOut }, 404: NOT_FOUND('team'), 409: CONFLICT('too many unrevoked keys') },
    handle: async (store, { input }) => {
      const body = input as z.infer<typeof keyCreate>;
      const issued = await store.createKey({
        teamId: body.team_id,
        name: body.name,
        userId: body.user_id,
        limits: body.limits === undefined ? undefined : limitsIn(body.limits),
        budgets: budgetsIn(body.budgets ?? []),
        metadata: body.metadata,
        expiresAt: body.expires_at === undefined ? undefined : toEpochMs(body.expires_at),
      });
      return { status: 201, body: { key: keyJson(issued.key), secret: issued.secret } };
    },
  },
  {
    method: 'GET',
    path: '/admin/keys',
    summary: 'List keys (never their secrets)',
    responses: { 200: { description: 'every key', schema: listOf(keyOut) } },
    handle: async (store) => ({ status: 200, body: { data: (await store.listKeys()).map(keyJson) } }),
  },
  {
    method: 'GET',
    path: '/admin/keys/{id}',
    summary: 'One key',
    responses: { 200: { description: 'the key', schema: keyOut }, 404: NOT_FOUND('key') },
    handle: async (store, { params }) => {
      const key = await store.getKey(params.id as string);
      return key === undefined ? notFound('key') : { status: 200, body: keyJson(key) };
    },
  },
  {
    method: 'PATCH',
    path: '/admin/keys/{id}',
    summary: "Change a key's name, user, limits, budgets, metadata or expiry (fields absent stay)",
    body: keyPatch,
    responses: { 200: { description: 'the key', schema: keyOut }, 404: NOT_FOUND('key') },
    handle: async (store, { params, input }) => {
      const body = input as z.infer<typeof keyPatch>;
      const key = await store.updateKey(params.id as string, {
        name: body.name,
        userId: body.user_id,
        limits: body.limits === undefined ? undefined : limitsIn(body.limits),
        budgets: body.budgets === undefined ? undefined : budgetsIn(body.budgets),
        metadata: body.metadata,
        expiresAt: body.expires_at === undefined ? undefined : body.expires_at === null ? null : toEpochMs(body.expires_at),
      });
      return key === undefined ? notFound('key') : { status: 200, body: keyJson(key) };
    },
  },
  {
    method: 'POST',
    path: '/admin/keys/{id}/rotate',
    summary: 'A new secret for the key (same id, team, limits, ledger); the old secret stops working',
    responses: { 200: { description: 'the key and its new secret', schema: issuedOut }, 404: NOT_FOUND('key'), 409: CONFLICT('the key is revoked') },
    handle: async (store, { params }) => {
      const issued = await store.rotateKey(params.id as string);
      return issued === undefined ? notFound('key') : { status: 200, body: { key: keyJson(issued.key), secret: issued.secret } };
    },
  },
  {
    method: 'POST',
    path: '/admin/keys/{id}/revoke',
    summary: 'Revoke the key (for good; idempotent)',
    responses: { 200: { description: 'the revoked key', schema: keyOut }, 404: NOT_FOUND('key') },
    handle: async (store, { params }) => {
      const key = await store.revokeKey(params.id as string);
      return key === undefined ? notFound('key') : { status: 200, body: keyJson(key) };
    },
  },
  {
    method: 'GET',
    path: '/admin/spend',
    summary: 'Spend from the ledger, grouped (team, key, user, mode, model, upstream or day), optionally filtered',
    query: spendQuery,
    responses: { 200: { description: 'one row per group (at most 10,000)', schema: spendOut } },
    handle: async (store, { input }) => {
      const q = input as z.infer<typeof spendQuery>;
      const rows = await store.querySpend(
        {
          from: q.from === undefined ? undefined : toEpochMs(q.from),
          to: q.to === undefined ? undefined : toEpochMs(q.to),
          teamId: q.team,
          keyId: q.key,
          userId: q.user,
          mode: q.mode,
          model: q.model,
          upstream: q.upstream,
        },
        q.groupBy,
      );
      return { status: 200, body: { group_by: q.groupBy, data: rows.map(spendJson) } };
    },
  },
];
