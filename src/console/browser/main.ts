import type { LiveSnapshot } from '../live-snapshot.js';
import { el, table, tile } from './dom.js';
import { startFlights } from './flights.js';
import { startKeys } from './keys.js';
import { startSpend } from './spend.js';
import { count, percent, rate, seconds, usd } from './format.js';
import uPlot from './vendor/uplot.js';

/**
 * The console's entry module: the Keys, Spend and Live flights pages are modules of their own;
 * the Overview and Upstreams pages are here. These poll /console/api/live (one request per POLL_MS per open page; the
 * server builds at most one reading a second for all of them) and renders the page named by
 * <body data-page>. Rates are differences between two readings of the same counters.
 */
const POLL_MS = 2_000;
/** Points kept for the charts: 10 minutes at POLL_MS. */
const HISTORY = 300;

const app = document.getElementById('app') as HTMLElement;
const page = document.body.dataset.page ?? 'overview';

interface Point {
  t: number;
  requestsPerSecond: number;
  savedPerSecond: number;
}
const history: Point[] = [];
let previous: LiveSnapshot | undefined;
let chart: uPlot | undefined;

function perSecond(now: number, before: number | undefined, dtMs: number): number | undefined {
  return before === undefined || dtMs <= 0 ? undefined : Math.max(0, ((now - before) * 1000) / dtMs);
}

function renderOverview(s: LiveSnapshot): void {
  const o = s.overview;
  const dt = previous === undefined ? 0 : s.at - previous.at;
  const requestRate = perSecond(o.requests, previous?.overview.requests, dt);
  const saved = o.coalesced + o.cacheHits;
  const errorShare = previous === undefined ? undefined : o.requests > previous.overview.requests ? (o.serverErrors - previous.overview.serverErrors) / (o.requests - previous.overview.requests) : 0;
  if (requestRate !== undefined) {
    history.push({ t: s.at / 1000, requestsPerSecond: requestRate, savedPerSecond: perSecond(saved, previous === undefined ? undefined : previous.overview.coalesced + previous.overview.cacheHits, dt) ?? 0 });
    if (history.length > HISTORY) history.shift();
  }
  const tokensSaved = Object.values(o.tokensSaved).reduce((a, b) => a + b, 0);
  const tiles = el(
    'ul',
    { class: 'tiles', 'aria-label': 'Gateway now' },
    tile('Requests per second', rate(requestRate), 'requests-per-second'),
    tile('Requests answered', count(o.requests), 'requests'),
    tile('In progress', count(o.activeRequests), 'active-requests'),
    tile('Upstream calls', count(o.upstreamCalls), 'upstream-calls'),
    tile('Saved by coalescing (incl. lingering)', count(o.coalesced), 'coalesced'),
    tile('… of which lingering past the window', count(o.lingerCatchUp), 'linger-catchup'),
    tile('Saved by the response cache', count(o.cacheHits), 'cache-hits'),
    tile('Tokens saved', count(tokensSaved), 'tokens-saved'),
    tile('Dollars saved (list price)', usd(o.usdSaved), 'usd-saved', o.usdSaved),
    tile('Dollars billed (list price)', usd(o.usdBilled), 'usd-billed', o.usdBilled),
    tile('Server error share (last poll)', percent(errorShare), 'error-share'),
    tile('Time to first token p50 / p95', `${seconds(o.ttftSeconds.p50)} / ${seconds(o.ttftSeconds.p95)}`, 'ttft'),
    tile('Gateway overhead p50 / p95', `${seconds(o.overheadSeconds.p50)} / ${seconds(o.overheadSeconds.p95)}`, 'overhead'),
  );
  const chartBox = el('div', { class: 'chart', role: 'img', 'aria-label': 'Requests per second and requests saved per second, last 10 minutes' });
  app.replaceChildren(el('h2', {}, 'Overview'), tiles, el('h3', {}, 'Requests per second'), chartBox);
  const data: uPlot.AlignedData = [history.map((p) => p.t), history.map((p) => p.requestsPerSecond), history.map((p) => p.savedPerSecond)];
  chart?.destroy();
  chart = new uPlot(
    {
      width: Math.max(320, Math.min(1100, app.clientWidth - 20)),
      height: 220,
      scales: { x: { time: true } },
      series: [{}, { label: 'requests/s', stroke: '#0b5cad' }, { label: 'saved/s', stroke: '#1b6e20' }],
    },
    data,
    chartBox,
  );
}

function renderUpstreams(s: LiveSnapshot): void {
  const u = s.upstreams;
  app.replaceChildren(
    el('h2', {}, 'Upstreams'),
    table(
      'Circuit breakers (per upstream and model)',
      ['breaker', 'state', 'probe in'],
      u.breakers.map((b) => [b.breaker, el('span', { class: `state-${b.state}`, 'data-state': b.state }, b.state === 'halfOpen' ? 'half-open' : b.state), b.probeInSeconds === undefined ? '–' : `${b.probeInSeconds} s`]),
      'breakers',
    ),
    table(
      'Rate-limit headroom (anthropic-ratelimit-* headers)',
      ['upstream', 'kind', 'tier', 'headroom', 'resting after 429'],
      u.headroom.map((h) => [h.upstream, h.kind, String(h.tier), percent(h.headroom), h.restingMs > 0 ? seconds(h.restingMs / 1000) : 'no']),
      'headroom',
    ),
    table('Upstream calls by status', ['upstream', 'status', 'calls'], u.calls.map((c) => [c.upstream, c.status, count(c.count)]), 'calls'),
    table('Failovers', ['from', 'to', 'reason', 'calls moved'], u.failovers.map((f) => [f.from, f.to, f.reason, count(f.count)]), 'failovers'),
    el('ul', { class: 'tiles', 'aria-label': 'Upstream pools' }, tile('Waiting for a connection', count(u.poolQueued), 'pool-queued'), tile('Pool waits timed out (529)', count(u.poolWaitTimeouts), 'pool-wait-timeouts')),
  );
}

async function poll(): Promise<void> {
  try {
    const response = await fetch('/console/api/live', { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (response.status === 401) {
      location.assign('/console/login');
      return;
    }
    const snapshot = (await response.json()) as LiveSnapshot;
    if (page === 'upstreams') renderUpstreams(snapshot);
    else renderOverview(snapshot);
    document.body.dataset.readingAt = String(snapshot.at);
    previous = snapshot;
  } catch {
    app.setAttribute('data-stale', 'true');
  }
  setTimeout(() => void poll(), POLL_MS);
}

if (page === 'keys') startKeys();
else if (page === 'spend') startSpend();
else if (page === 'flights') startFlights();
else void poll();
