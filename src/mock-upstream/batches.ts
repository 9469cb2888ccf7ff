/** The mock's Message Batches: in memory, bounded, ended after their first retrieval. */

export interface BatchRequest {
  custom_id: string;
  params: unknown;
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
  retrievals: number;
}

const EPOCH = Date.UTC(2026, 0, 1);

export class BatchStore {
  private readonly batches = new Map<string, Stored>();
  private counter = 0;

  constructor(private readonly capacity = 1_000) {}

  create(requests: BatchRequest[]): Batch {
    this.counter++;
    const id = `msgbatch_mock_${String(this.counter).padStart(8, '0')}`;
    const created = new Date(EPOCH + this.counter * 1000).toISOString();
    const batch: Batch = {
      id,
      type: 'message_batch',
      processing_status: 'in_progress',
      request_counts: { processing: requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      created_at: created,
      expires_at: new Date(EPOCH + this.counter * 1000 + 86_400_000).toISOString(),
      ended_at: null,
      cancel_initiated_at: null,
      archived_at: null,
      results_url: null,
    };
    if (this.batches.size >= this.capacity) {
      const oldest = this.batches.keys().next().value;
      if (oldest !== undefined) this.batches.delete(oldest);
    }
    this.batches.set(id, { batch, requests, retrievals: 0 });
    return batch;
  }

  /** Ends the batch on first retrieval, giving it an absolute results URL under `publicUrl`. */
  retrieve(id: string, publicUrl: string): Batch | undefined {
    const stored = this.batches.get(id);
    if (stored === undefined) return undefined;
    stored.retrievals++;
    const b = stored.batch;
    if (b.processing_status !== 'ended') {
      const canceled = b.processing_status === 'canceling';
      b.processing_status = 'ended';
      b.ended_at = b.created_at;
      b.request_counts = {
        processing: 0,
        succeeded: canceled ? 0 : stored.requests.length,
        errored: 0,
        canceled: canceled ? stored.requests.length : 0,
        expired: 0,
      };
      b.results_url = `${publicUrl}/v1/messages/batches/${id}/results`;
    }
    return b;
  }

  get(id: string): { batch: Batch; requests: BatchRequest[] } | undefined {
    const stored = this.batches.get(id);
    return stored === undefined ? undefined : { batch: stored.batch, requests: stored.requests };
  }

  cancel(id: string): Batch | undefined {
    const stored = this.batches.get(id);
    if (stored === undefined) return undefined;
    if (stored.batch.processing_status === 'in_progress') {
      stored.batch.processing_status = 'canceling';
      stored.batch.cancel_initiated_at = stored.batch.created_at;
    }
    return stored.batch;
  }

  delete(id: string): boolean {
    return this.batches.delete(id);
  }

  /** Newest first, as the API lists them. */
  list(): Batch[] {
    return [...this.batches.values()].map((s) => s.batch).reverse();
  }

  clear(): void {
    this.batches.clear();
  }
}
