import type { ApiCall } from './api-call.js';
import { validateBatch } from './batches.js';
import { countMessageTokens, createMessage, jsonBody } from './messages.js';
import { page } from './paging.js';

/** The API surface of the mock: route table, models and batches. Auth and faults were handled before dispatch. */

export const MOCK_MODELS = [
  { type: 'model', id: 'claude-opus-5', display_name: 'Claude Opus 5', created_at: '2026-09-01T00:00:00Z' },
  { type: 'model', id: 'claude-sonnet-5', display_name: 'Claude Sonnet 5', created_at: '2026-08-01T00:00:00Z' },
  { type: 'model', id: 'claude-haiku-5-5', display_name: 'Claude Haiku 5.5', created_at: '2026-07-01T00:00:00Z' },
  { type: 'model', id: 'claude-sonnet-4-5', display_name: 'Claude Sonnet 4.5', created_at: '2025-09-29T00:00:00Z' },
] as const;

type Handler = (call: ApiCall, id: string) => Promise<void> | void;

interface Route {
  /** The first capture group, if any, is the resource id. */
  pattern: RegExp;
  methods: Partial<Record<string, Handler>>;
}

function listModels(call: ApiCall): void {
  const result = page(MOCK_MODELS, call.url.searchParams);
  if (typeof result === 'string') call.reply.error(400, result);
  else call.reply.json(200, result);
}

function getModel(call: ApiCall, id: string): void {
  const model = MOCK_MODELS.find((m) => m.id === id);
  if (model === undefined) call.reply.error(404, `model: ${id}`);
  else call.reply.json(200, model);
}

function createBatch(call: ApiCall): void {
  const parsed = jsonBody(call);
  if (parsed === undefined) return;
  const requests = validateBatch(parsed.value);
  if (typeof requests === 'string') call.reply.error(400, requests);
  else call.reply.json(200, call.state.batches.create(requests));
}

function listBatches(call: ApiCall): void {
  const result = page(call.state.batches.list(), call.url.searchParams);
  if (typeof result === 'string') call.reply.error(400, result);
  else call.reply.json(200, result);
}

function getBatch(call: ApiCall, id: string): void {
  const batch = call.state.batches.retrieve(id, call.state.publicUrl);
  if (batch === undefined) call.reply.error(404, `message_batch: ${id} not found`);
  else call.reply.json(200, batch);
}

function cancelBatch(call: ApiCall, id: string): void {
  const batch = call.state.batches.cancel(id);
  if (batch === undefined) call.reply.error(404, `message_batch: ${id} not found`);
  else call.reply.json(200, batch);
}

function deleteBatch(call: ApiCall, id: string): void {
  const outcome = call.state.batches.delete(id);
  if (outcome === 'missing') call.reply.error(404, `message_batch: ${id} not found`);
  else if (outcome === 'processing') call.reply.error(400, `message_batch: ${id} is still processing; only ended batches can be deleted`);
  else call.reply.json(200, { id, type: 'message_batch_deleted' });
}

function batchResults(call: ApiCall, id: string): void {
  const lines = call.state.batches.results(id);
  if (lines === undefined) call.reply.error(404, `message_batch: ${id} not found`);
  else if (lines === null) call.reply.error(400, `message_batch: ${id} has not ended; results are not available yet`);
  else call.reply.bytes(200, 'application/binary', Buffer.from(lines.map((l) => `${l}\n`).join('')));
}

const ROUTES: readonly Route[] = [
  { pattern: /^\/v1\/messages$/, methods: { POST: createMessage } },
  { pattern: /^\/v1\/messages\/count_tokens$/, methods: { POST: countMessageTokens } },
  { pattern: /^\/v1\/models$/, methods: { GET: listModels } },
  { pattern: /^\/v1\/models\/([^/]+)$/, methods: { GET: getModel } },
  { pattern: /^\/v1\/messages\/batches$/, methods: { POST: createBatch, GET: listBatches } },
  { pattern: /^\/v1\/messages\/batches\/([^/]+)$/, methods: { GET: getBatch, DELETE: deleteBatch } },
  { pattern: /^\/v1\/messages\/batches\/([^/]+)\/cancel$/, methods: { POST: cancelBatch } },
  { pattern: /^\/v1\/messages\/batches\/([^/]+)\/results$/, methods: { GET: batchResults } },
];

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Runs the handler for the call's method and path: 404 for an unknown path, 405 for a wrong method. */
export async function dispatch(call: ApiCall): Promise<void> {
  const path = call.url.pathname;
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (match === null) continue;
    const handler = route.methods[call.method];
    if (handler === undefined) {
      call.reply.error(405, `Method ${call.method} is not allowed for ${path}`, { allow: Object.keys(route.methods).join(', ') });
      return;
    }
    const id = decode(match[1] ?? '');
    if (id === undefined) {
      call.reply.error(404, `Not found: ${path}`);
      return;
    }
    await handler(call, id);
    return;
  }
  call.reply.error(404, `Not found: ${call.method} ${path}`);
}
