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

/**
 * `destination` defaults to stdout written asynchronously: lines written while a write is in
 * flight are batched into one syscall under load, and go out at once when idle. Call
 * `logger.flush()` before exiting.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
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
