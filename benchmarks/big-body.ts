import { Client } from 'undici';
import { percentile } from './load.js';

/**
 * The event-loop stall one large JSON body causes in the gateway, against the time JSON.parse alone
 * takes on the same bytes in this run. The stall is seen from outside: a probe connection asks
 * `GET /healthz` back to back while the big body is sent and answered; the longest probe round
 * trip bounds the longest stretch the gateway's event loop could not answer it.
 */

export interface BigBodyResult {
  name: string;
  bytes: number;
  /** Median over runs of the longest /healthz round trip while the body was processed (ms). */
  stallMs: number;
  /** /healthz round trip p50 with no big body in flight (ms). */
  idleProbeMs: number;
  /** Median time of JSON.parse on the body's text in this process (ms). */
  parseMs: number;
  status: number;
}

/** A body of about `size` bytes: a Messages request whose `metadata` holds many small keys. */
export function manyKeysBody(size: number): string {
  const head = '{"model":"claude-sonnet-5","max_tokens":1,"messages":[{"role":"user","content":"big"}],"metadata":{';
  const parts: string[] = [];
  let length = head.length + 2;
  for (let i = 0; length < size - 32; i++) {
    const part = `"k${i}":${i}`;
    parts.push(part);
    length += part.length + 1;
  }
  return `${head}${parts.join(',')}}}`;
}

/** A body of about `size` bytes: a Messages request with one long prompt. */
export function longTextBody(size: number): string {
  const head = '{"model":"claude-sonnet-5","max_tokens":1,"messages":[{"role":"user","content":"';
  const tail = '"}]}';
  const unit = 'The quick brown fox jumps over the lazy dog. ';
  const text = unit.repeat(Math.ceil((size - head.length - tail.length) / unit.length)).slice(0, size - head.length - tail.length);
  return head + text + tail;
}

async function probeUntil(client: Client, done: () => boolean, rtts: number[]): Promise<void> {
  while (!done()) {
    const t0 = performance.now();
    const res = await client.request({ path: '/healthz', method: 'GET' });
    await res.body.dump();
    rtts.push(performance.now() - t0);
  }
}

export async function bigBodyStall(gatewayUrl: string, name: string, body: string, runs = 3): Promise<BigBodyResult> {
  const bytes = Buffer.from(body);
  const parses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    JSON.parse(body);
    parses.push(performance.now() - t0);
  }
  const probe = new Client(gatewayUrl, { pipelining: 0 });
  const sender = new Client(gatewayUrl, { bodyTimeout: 120_000, headersTimeout: 120_000 });
  const idle: number[] = [];
  let idleDone = false;
  const idleTimer = setTimeout(() => (idleDone = true), 500);
  await probeUntil(probe, () => idleDone, idle);
  clearTimeout(idleTimer);

  const stalls: number[] = [];
  let status = 0;
  for (let run = 0; run < runs; run++) {
    let finished = false;
    const rtts: number[] = [];
    const probing = probeUntil(probe, () => finished, rtts);
    const res = await sender.request({
      path: '/v1/messages',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench-0000000000', 'anthropic-version': '2023-06-01', 'x-gateway-coalesce': 'off' },
      body: bytes,
    });
    await res.body.dump();
    status = res.statusCode;
    finished = true;
    await probing;
    stalls.push(Math.max(...rtts));
  }
  await probe.close();
  await sender.close();
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  return {
    name,
    bytes: bytes.length,
    stallMs: percentile(sorted(stalls), 50),
    idleProbeMs: percentile(sorted(idle), 50),
    parseMs: percentile(sorted(parses), 50),
    status,
  };
}
