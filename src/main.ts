import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { runCli } from './cli.js';
import { ConfigError, loadConfig } from './config.js';
import { startTracing } from './observability/tracing.js';

/**
 * Process entry: configuration, then telemetry, then (and only then) the server modules, so
 * tracing is in place before the app loads. Exits 0 after a graceful drain, 1 on bad configuration.
 * Options (--help, --version, --print-config: src/cli.ts) print and exit without starting anything.
 */
async function main(): Promise<void> {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  // --help, --version, --print-config answer and exit; only a bare command starts the gateway.
  const cli = runCli(process.argv.slice(2), process.env, version);
  if (cli.kind === 'exit') {
    process.stdout.write(cli.stdout);
    process.stderr.write(cli.stderr);
    process.exitCode = cli.code;
    return;
  }
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
  if (config.workers > 1 && cluster.isPrimary) {
    superviseWorkers(config.workers);
    return;
  }
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

/**
 * WORKERS > 1: this process only supervises; each worker is a whole gateway sharing the listening
 * port (node:cluster). Coordination between workers goes through Redis when REDIS_URL is set.
 * SIGTERM/SIGINT are passed on; the supervisor exits once every worker has drained.
 */
function superviseWorkers(count: number): void {
  let stopping = false;
  for (let i = 0; i < count; i++) cluster.fork();
  cluster.on('exit', (worker, code) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    process.stderr.write(`claude-gateway: worker ${worker.process.pid ?? '?'} exited with ${code}; starting another\n`);
    cluster.fork();
  });
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`claude-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
