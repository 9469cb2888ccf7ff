import { pino, type Logger, type DestinationStream } from 'pino';

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

/** Log lines are written to stdout in batches of this many bytes at least... */
export const LOG_BATCH_BYTES = 8192;
/** ...or after this long, whichever comes first: a quiet gateway's lines are never held longer. */
export const LOG_FLUSH_MS = 100;

/**
 * `destination` defaults to stdout written asynchronously in batches (LOG_BATCH_BYTES or every
 * LOG_FLUSH_MS): the request log line was the largest single cost the gateway adds per request
 * (BENCHMARKS.md), and writing each line alone (an fs write through libuv's thread pool) was part
 * of it. Lines still buffered when the process exits are written synchronously by pino's exit hook;
 * call `logger.flush()` before a planned exit.
 */
export function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
}

export function createLogger(level: string, destination: DestinationStream = stdoutDestination()): Logger {
  return pino(
    {
      level,
      base: { service: 'claude-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * The per-request logger: request lines are built from whitelisted scalar fields only (never
 * headers or bodies), so they skip the redaction walk that dominates pino's cost per line.
 */
export function requestLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [] } });
}
