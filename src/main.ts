import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from './config.js';
import { startTracing } from './observability/tracing.js';

/**
 * Process entry: configuration, then telemetry, then (and only then) the server modules, so
 * tracing is in place before the app loads. Exits 0 after a graceful drain, 1 on bad configuration.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`claude-gateway: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const tracing = await startTracing(process.env, version);

  const { createLogger } = await import('./observability/logger.js');
  const { startGateway } = await import('./server.js');
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger, { tracer: tracing?.tracer });
  if (tracing !== undefined) logger.info('OpenTelemetry tracing on (OTLP exporter from OTEL_* variables)');

  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    gateway
      .shutdown()
      .then(() => tracing?.shutdown())
      .then(
        () => logger.flush(() => process.exit(0)),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          logger.flush(() => process.exit(1));
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`claude-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
