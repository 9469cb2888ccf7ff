// @ts-check
/**
 * Metrics and checks whose thresholds cannot pass on an empty metric.
 *
 * k6 0.48 reports a threshold on a Rate or Trend that got no samples as passed (`rate==1` on zero
 * checks is green), so a script that never reached the code path it claims to test would pass.
 * Every Rate and Trend here therefore has a sibling Counter `<name>_samples`, every check() made
 * through this module counts into `check_samples` with the check's tags, and `guarded()` adds a
 * `count>0` threshold on the right counter (same tag selector) for every threshold a script sets:
 *   checks{sel}                  -> check_samples{sel}
 *   http_req_*{sel}              -> http_reqs{sel}
 *   <rate or trend made here>    -> <name>_samples{sel}
 *   <counter made here>          -> itself
 * A threshold on any other metric throws at init, so no unguarded threshold can be written.
 */
import { check as k6check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

/** @typedef {{ [name: string]: string }} Tags */
/** @typedef {import('k6/options').Options['thresholds']} Thresholds */

/** Metric kind by name, for the metrics made through this module (init context, per VU). */
/** @type {{ [name: string]: 'counter' | 'rate' | 'trend' }} */
const kinds = {};

/** The guard counter of each built-in metric a script may put a threshold on. */
/** @type {{ [name: string]: string }} */
const BUILTIN_GUARDS = {
  checks: 'check_samples',
  http_reqs: 'http_reqs',
  http_req_failed: 'http_reqs',
  http_req_duration: 'http_reqs',
  http_req_waiting: 'http_reqs',
  http_req_connecting: 'http_reqs',
  http_req_receiving: 'http_reqs',
  http_req_sending: 'http_reqs',
  iterations: 'iterations',
  iteration_duration: 'iterations',
};

const checkSamples = new Counter('check_samples');

/**
 * k6's check(), also counting one `check_samples` per assertion with the same tags.
 * @template T
 * @param {T} value
 * @param {{ [name: string]: (v: T) => boolean }} sets
 * @param {Tags} [tags]
 * @returns {boolean}
 */
export function check(value, sets, tags) {
  checkSamples.add(Object.keys(sets).length, tags);
  return k6check(value, sets, tags);
}

/**
 * A Counter whose thresholds get `count>0` added by guarded().
 * @param {string} name
 * @returns {Counter}
 */
export function counter(name) {
  kinds[name] = 'counter';
  return new Counter(name);
}

/**
 * A Rate that also counts its samples in `<name>_samples`.
 * @param {string} name
 * @returns {{ add(value: boolean | number, tags?: Tags): void }}
 */
export function sampledRate(name) {
  kinds[name] = 'rate';
  const rate = new Rate(name);
  const samples = new Counter(`${name}_samples`);
  return {
    add(value, tags) {
      rate.add(value, tags);
      samples.add(1, tags);
    },
  };
}

/**
 * A Trend that also counts its samples in `<name>_samples`.
 * @param {string} name
 * @param {boolean} [isTime] values are milliseconds
 * @returns {{ add(value: number, tags?: Tags): void }}
 */
export function sampledTrend(name, isTime) {
  kinds[name] = 'trend';
  const trend = new Trend(name, isTime === true);
  const samples = new Counter(`${name}_samples`);
  return {
    add(value, tags) {
      trend.add(value, tags);
      samples.add(1, tags);
    },
  };
}

/**
 * The thresholds plus a `count>0` guard for each (see the module comment). Throws on a threshold
 * whose metric has no known guard.
 * @param {NonNullable<Thresholds>} thresholds
 * @returns {NonNullable<Thresholds>}
 */
export function guarded(thresholds) {
  /** @type {NonNullable<Thresholds>} */
  const out = {};
  for (const key of Object.keys(thresholds)) out[key] = (thresholds[key] || []).slice();
  for (const key of Object.keys(thresholds)) {
    const brace = key.indexOf('{');
    const base = brace < 0 ? key : key.slice(0, brace);
    const selector = brace < 0 ? '' : key.slice(brace);
    let guard = BUILTIN_GUARDS[base];
    if (guard === undefined) {
      const kind = kinds[base];
      if (kind === undefined) {
        throw new Error(`threshold on "${key}": make its metric with lib/metrics.js (counter, sampledRate, sampledTrend) so that an empty metric fails`);
      }
      guard = kind === 'counter' ? base : `${base}_samples`;
    }
    const guardKey = guard + selector;
    const list = out[guardKey] || (out[guardKey] = []);
    if (list.indexOf('count>0') < 0) list.push('count>0');
  }
  return out;
}
