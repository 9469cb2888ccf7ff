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

export function createLogger(level: string, destination?: DestinationStream): Logger {
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
