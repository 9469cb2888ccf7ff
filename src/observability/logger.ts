import { pino, type Logger, type DestinationStream } from 'pino';
import { fstatSync } from 'node:fs';
import { BatchedWriter } from './log-destination.js';
import { isoTimestamp } from './request-log.js';

export type { Logger };

/**
 * Structured JSON logs. The gateway never logs request headers wholesale; redaction is the second
 * line of defence for any credential that still reaches a log object by accident.
 */
export const REDACT_PATHS = [
  'authorization',
  'x-api-key',
  'apiKey',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-gateway-api-key"]',
  '*.authorization',
  '*["x-api-key"]',
  '*.apiKey',
  '*.anthropicApiKey',
  '*.gatewayApiKeys',
];

/** Log lines are written to stdout in batches of this many characters at least... */
export const LOG_BATCH_BYTES = 8192;
/** ...or after this long, whichever comes first: a quiet gateway's lines are never held longer. */
export const LOG_FLUSH_MS = 100;
/** Characters of log lines held at most while stdout's reader does not keep up (then lines are dropped and counted). */
export const LOG_MAX_BUFFERED = 16 * 1024 * 1024;

/**
 * `destination` defaults to stdout written asynchronously in batches (LOG_BATCH_BYTES or every
 * LOG_FLUSH_MS) by a BatchedWriter (observability/log-destination.ts): the request log line was the
 * largest single cost the gateway adds per request (benchmarks/HISTORY.md, the `perf` branch
 * section), and most of it was the writing.
 * Lines still buffered when the process exits are written synchronously by an exit hook; call
 * `logger.flush()` before a planned exit.
 */
export function stdoutDestination(): DestinationStream {
  if (stdout === undefined) {
    const writer = new BatchedWriter({ fd: 1, minBatch: LOG_BATCH_BYTES, flushMs: LOG_FLUSH_MS, maxBuffered: LOG_MAX_BUFFERED, sync: writesNeverWait(1) });
    process.once('exit', () => writer.flushSync());
    stdout = writer;
  }
  return stdout;
}

/** Files and devices (a terminal, /dev/null) take writes without waiting for a reader; pipes and sockets may not. */
function writesNeverWait(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return !stat.isFIFO() && !stat.isSocket();
  } catch {
    return false;
  }
}

/** One writer per process for fd 1, whoever asks (every logger of the process shares stdout's order and bound). */
let stdout: BatchedWriter | undefined;

export function createLogger(level: string, destination: DestinationStream = stdoutDestination()): Logger {
  return pino(
    {
      level,
      base: { service: 'claude-gateway' },
      timestamp: isoTimestamp,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
