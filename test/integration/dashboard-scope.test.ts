import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/k6.js';
import { startStack } from '../helpers/stack.js';

/**
 * The Grafana dashboard works on a shared Prometheus: it has `job` and `instance` template
 * variables, and every series it reads (each metric name the gateway exposes, as it appears in any
 * query) is selected by both, so no other service's `http_requests_total` is mixed in.
 */

interface Dashboard {
  templating: { list: { name: string; query?: { query?: string } | string }[] };
  panels: { title?: string; targets?: { expr?: string }[] }[];
}

const SCOPE = ['job=~"$job"', 'instance=~"$instance"'];

test('every dashboard query is scoped by the job and instance variables', async () => {
  const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'monitoring/grafana/dashboards/claude-gateway.json'), 'utf8')) as Dashboard;
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
