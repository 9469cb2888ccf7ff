import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { adminDispatch } from '../admin/dispatch.js';
import type { GovernanceStore } from '../governance/store.js';
import type { FlightView } from '../pipeline/coalesce/flight-group.js';
import { ConsoleAssets } from './assets.js';
import { budgetBars } from './budget-bars.js';
import { oncePer } from './once-per.js';
import { sharedSpendReads } from './shared-spend.js';
import { ConsoleCredentials, type ConsoleRole } from './credentials.js';
import { consoleHandler } from './handler.js';
import { LiveReadings, type BreakerView, type HeadroomView } from './live.js';
import { SessionStore } from './sessions.js';

export interface ConsoleOptions {
  /** ADMIN_API_KEY: logs in as admin. */
  readonly adminKey: string;
  /** ADMIN_VIEWER_KEY: logs in as a viewer (may look, not change). */
  readonly viewerKey: string | undefined;
  /** The gateway's metrics (GatewayMetrics.readings: with WORKERS > 1, every worker's). */
  readonly metrics: () => Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  /** Keys, teams and the ledger: the Keys and Spend pages. */
  readonly store: GovernanceStore;
  /** The joinable flights now (FlightGroup.describe): the Live flights page. */
  readonly flights: () => readonly FlightView[];
  readonly breakers: () => readonly BreakerView[];
  readonly headroom: () => readonly HeadroomView[];
  readonly onLogin?: (role: ConsoleRole | undefined, address: string | undefined) => void;
}

/** Sessions last 12 hours from login; at most 1,000 are held (the oldest is logged out first). */
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 1_000;
/** The budgets and flights readings are taken at most this often, whatever the number of open pages. */
const READING_INTERVAL_MS = 1_000;

/** The console's request handler for the admin listener: true when it answered the request. */
export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export function createConsole(options: ConsoleOptions): { handle: ConsoleHandler; assets: ConsoleAssets } {
  const assets = new ConsoleAssets();
  const handle = consoleHandler({
    credentials: new ConsoleCredentials(options.adminKey, options.viewerKey),
    sessions: new SessionStore({ ttlMs: SESSION_TTL_MS, max: MAX_SESSIONS }),
    assets,
    live: new LiveReadings({ metrics: options.metrics, breakers: options.breakers, headroom: options.headroom }),
    admin: sharedSpendReads(adminDispatch(options.store), READING_INTERVAL_MS),
    readings: new Map<string, () => Promise<unknown>>([
      // Like the metrics reading: at most one a second for every open page together.
      ['budgets', oncePer(READING_INTERVAL_MS, () => budgetBars(options.store, Date.now()))],
      ['flights', oncePer(READING_INTERVAL_MS, () => Promise.resolve({ at: Date.now(), flights: options.flights() }))],
    ]),
    sessionSeconds: SESSION_TTL_MS / 1000,
    onLogin: options.onLogin,
  });
  return { handle, assets };
}
