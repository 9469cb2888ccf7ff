import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { startGateway } from './server.js';

/** Process entry: configuration, server, signals. Exits 0 after a graceful drain, 1 on bad configuration. */
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
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger);

  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    gateway.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
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
