import { answerFor, messageOf, validateMessages, type MessagesRequest } from './answers.js';

/**
 * The mock's Message Batches: in memory, at most `capacity` (oldest dropped). A batch is created
 * in_progress and has ended by its first retrieval (GET), which gives it an ABSOLUTE results_url.
 */

export interface BatchRequest {
  custom_id: string;
  params: MessagesRequest;
}

export interface Batch {
  id: string;
  type: 'message_batch';
  processing_status: 'in_progress' | 'canceling' | 'ended';
  request_counts: { processing: number; succeeded: number; errored: number; canceled: number; expired: number };
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  cancel_initiated_at: string | null;
  archived_at: null;
  results_url: string | null;
}

interface Stored {
  batch: Batch;
  requests: BatchRequest[];
}

const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const DAY_MS = 86_400_000;

/** The requests of a create body, or an error message for a 400. */
export function validateBatch(body: unknown): BatchRequest[] | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body: Input should be a JSON object';
  const requests = (body as { requests?: unknown }).requests;
  if (!Array.isArray(requests) || requests.length === 0) return 'requests: Field required (a non-empty array)';
  const seen = new Set<string>();
  for (const [i, r] of requests.entries()) {
    const item = (typeof r === 'object' && r !== null ? r : {}) as { custom_id?: unknown; params?: unknown };
    if (typeof item.custom_id !== 'string' || !CUSTOM_ID.test(item.custom_id)) return `requests.${i}.custom_id: 1 to 64 characters of [a-zA-Z0-9_-] required`;
    if (seen.has(item.custom_id)) return `requests.${i}.custom_id: duplicate custom_id ${item.custom_id}`;
    seen.add(item.custom_id);
    const problem = validateMessages(item.params);
    if (problem !== undefined) return `requests.${i}.params.${problem}`;
  }
  return requests as BatchRequest[];
}

export class BatchStore {
  private readonly batches = new Map<string, Stored>();
  /** Never reset, so ids stay unique for the life of the mock. */
  private counter = 0;

  constructor(
    private readonly capacity = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  create(requests: BatchRequest[]): Batch {
    this.counter++;
    const id = `msgbatch_mock_${String(this.counter).padStart(12, '0')}`;
    const created = this.now();
    const batch: Batch = {
      id,
      type: 'message_batch',
      processing_status: 'in_progress',
      request_counts: { processing: requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      created_at: new Date(created).toISOString(),
      expires_at: new Date(created + DAY_MS).toISOString(),
      ended_at: null,
      cancel_initiated_at: null,
      archived_at: null,
      results_url: null,
    };
    if (this.batches.size >= this.capacity) {
      const oldest = this.batches.keys().next().value;
      if (oldest !== undefined) this.batches.delete(oldest);
    }
    this.batches.set(id, { batch, requests });
    return batch;
  }

  /** Ends the batch (succeeded, or canceled if a cancel was asked) with results under `publicUrl`. */
  retrieve(id: string, publicUrl: string): Batch | undefined {
    const stored = this.batches.get(id);
    if (stored === undefined) return undefined;
    const b = stored.batch;
    if (b.processing_status !== 'ended') {
      const n = stored.requests.length;
      const canceled = b.processing_status === 'canceling';
      b.processing_status = 'ended';
      b.ended_at = new Date(this.now()).toISOString();
      b.request_counts = { processing: 0, succeeded: canceled ? 0 : n, errored: 0, canceled: canceled ? n : 0, expired: 0 };
      b.results_url = `${publicUrl}/v1/messages/batches/${id}/results`;
    }
    return b;
  }

  cancel(id: string): Batch | undefined {
    const stored = this.batches.get(id);
    if (stored === undefined) return undefined;
    if (stored.batch.processing_status === 'in_progress') {
      stored.batch.processing_status = 'canceling';
      stored.batch.cancel_initiated_at = new Date(this.now()).toISOString();
    }
    return stored.batch;
  }

  /** 'deleted', 'missing', or 'processing' (the API deletes only ended batches). */
  delete(id: string): 'deleted' | 'missing' | 'processing' {
    const stored = this.batches.get(id);
    if (stored === undefined) return 'missing';
    if (stored.batch.processing_status !== 'ended') return 'processing';
    this.batches.delete(id);
    return 'deleted';
  }

  /** JSONL result lines of an ended batch; undefined when missing, null while still processing. */
  results(id: string): string[] | undefined | null {
    const stored = this.batches.get(id);
    if (stored === undefined) return undefined;
    if (stored.batch.processing_status !== 'ended') return null;
    const canceled = stored.batch.request_counts.canceled > 0;
    return stored.requests.map((r) =>
      JSON.stringify({
        custom_id: r.custom_id,
        result: canceled ? { type: 'canceled' } : { type: 'succeeded', message: messageOf(answerFor(r.params), r.params.model) },
      }),
    );
  }

  /** Newest first, as the API lists them. */
  list(): Batch[] {
    return [...this.batches.values()].map((s) => s.batch).reverse();
  }

  clear(): void {
    this.batches.clear();
  }
}
