import { getJson, pollEvery, type FlightJson } from './api.js';
import { el, table } from './dom.js';
import { count, seconds } from './format.js';

/** The Live flights page: each joinable call in flight now (at most 200), its tenant as its id only. */
const app = document.getElementById('app') as HTMLElement;
const body = el('div', { 'data-testid': 'flights-body' });

async function refresh(): Promise<void> {
  const { flights } = await getJson<{ flights: FlightJson[] }>('/console/api/flights');
  body.replaceChildren(
    el('ul', { class: 'tiles', 'aria-label': 'Flights now' }, el('li', { class: 'tile' }, el('div', { class: 'label' }, 'Joinable flights'), el('div', { class: 'value', 'data-metric': 'flights' }, count(flights.length)))),
    table(
      'Calls in flight (identical requests join them)',
      ['model', 'mode', 'subscribers', 'bytes so far', 'age', 'tenant id'],
      flights.map((f) => [f.model ?? '–', f.mode ?? '–', count(f.subscribers), count(f.bytes), seconds(f.ageSeconds), f.tenant ?? '–']),
      'flights',
    ),
  );
}

export function startFlights(): void {
  app.replaceChildren(el('h2', {}, 'Live flights'), body);
  pollEvery(refresh);
}
