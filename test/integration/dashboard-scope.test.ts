import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/k6.js';
import { startStack } from '../helpers/stack.js';

/**
 * The Grafana dashboard works on a shared Prometheus: it has `job` and `instance` template
 * variables, and every series it reads (each metric name the gateway exposes, as it appears in any
 * query) is selected by both, so no other service's `http_requests_total` is mixed in. It works on
 * any Grafana: every panel, target and query variable reads from the `datasource` variable, never
 * from a datasource uid of one installation.
 */

interface DatasourceRef {
  type?: string;
  uid?: string;
}

interface Target {
  expr?: string;
  refId?: string;
  datasource?: DatasourceRef;
}

interface Panel {
  title?: string;
  type?: string;
  datasource?: DatasourceRef;
  targets?: Target[];
  panels?: Panel[];
  fieldConfig?: { defaults?: { unit?: string } };
}

interface Dashboard {
  templating: { list: { name: string; type: string; query?: { query?: string } | string; datasource?: DatasourceRef }[] };
  panels: Panel[];
}

const DASHBOARD = join(REPO_ROOT, 'monitoring/grafana/dashboards/claude-gateway.json');

function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const SCOPE = ['job=~"$job"', 'instance=~"$instance"'];

test('every dashboard query is scoped by the job and instance variables', async () => {
  const dashboard = readDashboard();
  const variables = dashboard.templating.list.map((v) => v.name);
  assert.ok(variables.includes('job') && variables.includes('instance'), `template variables: ${variables.join(', ')}`);

  // The metric names the gateway exposes (histograms as their series), from a real scrape.
  const stack = await startStack();
  let exposition: string;
  try {
    exposition = await (await fetch(`${stack.gateway.url}/metrics`)).text();
  } finally {
    await stack.close();
  }
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count', '']) names.add(name + suffix);
    else names.add(name);
  }
  assert.ok(names.has('http_requests_total') && names.has('claude_api_ttft_seconds_bucket'));

  const unscoped: string[] = [];
  let selectors = 0;
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets ?? []) {
      if (expr === undefined) continue;
      for (const match of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?/g)) {
        const [, name, braces] = match as unknown as [string, string, string | undefined];
        if (!names.has(name)) continue;
        selectors++;
        if (braces === undefined || !SCOPE.every((m) => braces.includes(m))) unscoped.push(`${panel.title ?? '?'}: ${name}${braces ?? ''}`);
      }
    }
  }
  assert.ok(selectors >= 20, `${selectors} series selectors found`);
  assert.deepEqual(unscoped, []);
});

const FROM_VARIABLE = { type: 'prometheus', uid: '${datasource}' };

test('every panel, target and query variable reads from the datasource variable, no installation\'s uid', () => {
  const dashboard = readDashboard();
  const variable = dashboard.templating.list.find((v) => v.name === 'datasource');
  assert.ok(variable !== undefined, 'a `datasource` template variable');
  assert.equal(variable.type, 'datasource');
  assert.equal(variable.query, 'prometheus', 'it lists Prometheus datasources');

  const elsewhere: string[] = [];
  for (const v of dashboard.templating.list) {
    if (v.type === 'query') assert.deepEqual(v.datasource, FROM_VARIABLE, `variable ${v.name}`);
  }
  const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row' || p.targets !== undefined);
  assert.ok(panels.length >= 20, `${panels.length} panels`);
  for (const panel of panels) {
    if (JSON.stringify(panel.datasource) !== JSON.stringify(FROM_VARIABLE)) elsewhere.push(`panel ${panel.title ?? '?'}: ${JSON.stringify(panel.datasource)}`);
    for (const t of panel.targets ?? []) {
      if (JSON.stringify(t.datasource) !== JSON.stringify(FROM_VARIABLE)) elsewhere.push(`${panel.title ?? '?'} ${t.refId ?? '?'}: ${JSON.stringify(t.datasource)}`);
    }
  }
  assert.deepEqual(elsewhere, []);
  // No fixed uid anywhere else either (only Grafana's own built-in annotation source).
  const uids = [...readFileSync(DASHBOARD, 'utf8').matchAll(/"uid": "([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(uids)].sort(), ['${datasource}', '-- Grafana --', 'claude-gateway']);
});

test('the dashboard shows what an operator acts on: gateway overhead, upstream pool waits, Redis', () => {
  const exprs = allPanels(readDashboard().panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
  const reads = (metric: string): boolean => exprs.some((e) => new RegExp(`\\b${metric}\\{`).test(e));
  const missing = [
    'gateway_overhead_seconds_bucket',
    'upstream_pool_queued_requests',
    'upstream_pool_active_requests',
    'upstream_pool_capacity',
    'upstream_pool_connections',
    'upstream_pool_wait_seconds_count',
    'upstream_pool_wait_seconds_bucket',
    'upstream_pool_wait_timeouts_total',
    'redis_available',
    'redis_domain_available',
    'redis_errors_total',
  ].filter((m) => !reads(m));
  assert.deepEqual(missing, []);
});

test('token panels show tokens per second: a rate, in a tokens/s unit (share panels: a ratio of two such rates, in percent)', () => {
  const readsTokens = allPanels(readDashboard().panels).filter((p) => (p.targets ?? []).some((t) => /claude_tokens(_saved)?_total/.test(t.expr ?? '')));
  const sharePanels = readsTokens.filter((p) => / share /.test(p.title ?? ''));
  const tokenPanels = readsTokens.filter((p) => !sharePanels.includes(p));
  assert.ok(tokenPanels.length >= 2, `${tokenPanels.length} token panels`);
  for (const panel of sharePanels) {
    assert.equal(panel.fieldConfig?.defaults?.unit, 'percentunit', `${panel.title ?? '?'}: unit`);
    for (const t of panel.targets ?? []) assert.match(t.expr ?? '', /rate\(claude_tokens_total\{[^}]*\}\[\$__rate_interval\]\)\)\s*\/\s*\(sum by \(\w+\) \(rate\(claude_tokens_total\{[^}]*\}\[\$__rate_interval\]\)\) > 0\)/, `${panel.title ?? '?'}: a ratio of per-second rates, its denominator guarded`);
  }
  for (const panel of tokenPanels) {
    assert.equal(panel.fieldConfig?.defaults?.unit, 'count:tokens/s', `${panel.title ?? '?'}: unit`);
    for (const t of panel.targets ?? []) assert.match(t.expr ?? '', /rate\(claude_tokens(_saved)?_total\{[^}]*\}\[\$__rate_interval\]\)/, `${panel.title ?? '?'}: a per-second rate`);
  }
});
