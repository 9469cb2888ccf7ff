// First: V8 heap settings must hold before any other module's code runs (see v8-heap.ts).
import './v8-heap.js';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CLI_VARIABLES, runAdminCli, runCli } from './cli.js';
import { ConfigError, loadConfig } from './config.js';
import { nearMissVariables } from './config-typos.js';
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
  if (cli.kind === 'admin') {
    const outcome = await runAdminCli(process.argv.slice(2), process.env);
    process.stdout.write(outcome.stdout);
    process.stderr.write(outcome.stderr);
    process.exitCode = outcome.code;
    return;
  }
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
    // Before any worker exists: a worker's first scrape finds the primary listening.
    const { serveClusterMetrics } = await import('./observability/cluster-metrics.js');
    serveClusterMetrics(cluster);
    // Key concurrency slots, and without Redis budget counters and limit windows: one set here for all the workers.
    if (config.countersInSupervisor) (await import('./governance/supervisor-counters.js')).serveSupervisorCounters(cluster);
    // Without TENANT_HASH_KEY, one random key for this run, shared by its workers: a client is the same
    // tenant (rate limits, logs) whichever worker takes its connection.
    superviseWorkers(config.workers, config.tenantHashKey === undefined ? randomBytes(32).toString('hex') : undefined);
    return;
  }
  // A dead log reader (a crashed shipper, `| head`) must not crash or wedge the gateway.
  process.stdout.on('error', () => undefined);
  const tracing = await startTracing(process.env, version);

  const { createLogger } = await import('./observability/logger.js');
  const { startGateway } = await import('./server.js');
  const worker = cluster.isWorker ? process.env[WORKER_SLOT_VARIABLE] : undefined;
  // The supervisor's key for this run (a secret): read once, and gone from the environment after.
  const runTenantKey = cluster.isWorker ? process.env[RUN_TENANT_KEY_VARIABLE] : undefined;
  Reflect.deleteProperty(process.env, RUN_TENANT_KEY_VARIABLE);
  // WORKERS > 1: every line says which worker wrote it (the `worker` of the per-worker metrics).
  const logger = worker === undefined ? createLogger(config.logLevel) : createLogger(config.logLevel).child({ worker });
  // ADMIN_URL is the admin command line's (cli.ts), not the gateway's: set next to ADMIN_API_KEY, it is no typo.
  for (const { name, closest } of nearMissVariables(process.env, [...config.upstreams.flatMap((u) => u.apiKeyEnv ?? []), ...CLI_VARIABLES])) {
    logger.warn({ variable: name, closest }, `${name} is not a variable the gateway knows and is ignored: did you mean ${closest}?`);
  }
  // Start-up's garbage and grown young generation returned before the first request (src/start-up-collection.ts).
  await (await import('./start-up-collection.js')).collectStartUpGarbage();
  const gateway = await startGateway(config, logger, { tracer: tracing?.tracer, worker, runTenantKey });
  if (tracing !== undefined) logger.info('OpenTelemetry tracing on (OTLP exporter from OTEL_* variables)');

  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    // The drain is bounded by SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS; this bounds everything after it
    // too (telemetry export, a log flush that never calls back because stdout's reader is gone).
    const deadline = setTimeout(() => process.exit(1), config.shutdownDelayMs + config.shutdownGraceMs + EXIT_MARGIN_MS);
    deadline.unref();
    gateway
      .shutdown()
      .then(() => tracing?.shutdown())
      .then(
        () => exitAfterFlush(logger, 0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          exitAfterFlush(logger, 1);
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Time allowed after the drain for telemetry and logs to flush. */
const EXIT_MARGIN_MS = 5_000;
/** How long the last log lines may take to flush before the process exits anyway. */
const FLUSH_DEADLINE_MS = 1_000;

function exitAfterFlush(logger: { flush(cb: (err?: Error) => void): void }, code: number): void {
  let exited = false;
  const exit = (): void => {
    if (exited) return;
    exited = true;
    process.exit(code);
  };
  setTimeout(exit, FLUSH_DEADLINE_MS);
  try {
    logger.flush(exit);
  } catch {
    exit();
  }
}

/** Set by the supervisor on each worker it forks: the worker's slot, 0..WORKERS-1 (its `worker` label). */
const WORKER_SLOT_VARIABLE = 'CLAUDE_GATEWAY_WORKER_SLOT';
/** Set by the supervisor on each worker when TENANT_HASH_KEY is not: the run's own tenant key. */
const RUN_TENANT_KEY_VARIABLE = 'CLAUDE_GATEWAY_RUN_TENANT_KEY';

/** Worker crashes tolerated within CRASH_WINDOW_MS before the supervisor gives up. */
const CRASH_BUDGET = 5;
const CRASH_WINDOW_MS = 60_000;
const RESTART_BASE_DELAY_MS = 100;
const RESTART_MAX_DELAY_MS = 10_000;

/**
 * WORKERS > 1: this process only supervises; each worker is a whole gateway sharing the listening
 * port (node:cluster). Coordination between workers goes through Redis when REDIS_URL is set.
 * SIGTERM/SIGINT are passed on; the supervisor exits once every worker has drained.
 * Each worker holds a slot, 0..count-1, that its replacement inherits: per-worker series stay bounded.
 */
function superviseWorkers(count: number, runTenantKey: string | undefined): void {
  let stopping = false;
  let exitCode = 0;
  const crashes: number[] = [];
  const slots = new Map<number, string>();
  const fork = (slot: string): void => {
    const worker = cluster.fork({ [WORKER_SLOT_VARIABLE]: slot, ...(runTenantKey === undefined ? {} : { [RUN_TENANT_KEY_VARIABLE]: runTenantKey }) });
    slots.set(worker.id, slot);
  };
  for (let i = 0; i < count; i++) fork(String(i));
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
  };
  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.get(worker.id) ?? '0';
    slots.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && (crashes[0] as number) < now - CRASH_WINDOW_MS) crashes.shift();
    const how = `code ${String(code)}, signal ${signal}`;
    if (crashes.length > CRASH_BUDGET) {
      process.stderr.write(`claude-gateway: worker ${worker.process.pid ?? '?'} exited with ${how}; ${crashes.length} crashes within ${CRASH_WINDOW_MS / 1000}s exceed the crash budget (${CRASH_BUDGET}): stopping\n`);
      exitCode = 1;
      stop('SIGTERM');
      return;
    }
    // Back off: a worker that dies at start-up must not be re-forked in a hot loop.
    const delay = Math.min(RESTART_MAX_DELAY_MS, RESTART_BASE_DELAY_MS * 2 ** (crashes.length - 1));
    process.stderr.write(`claude-gateway: worker ${worker.process.pid ?? '?'} exited with ${how}; starting another in ${delay} ms\n`);
    setTimeout(() => {
      if (!stopping) fork(slot);
    }, delay);
  });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`claude-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
