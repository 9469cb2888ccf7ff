// @ts-check
/**
 * The layer rule of ARCHITECTURE.md ("Layers"), checked by `npm run deps` (part of `npm test`):
 * a module imports only from its own layer and the layers below it, and no import chain is a cycle.
 * Type-only imports count too: a type from a higher layer ties the lower one to it all the same.
 *
 * LAYERS is the one list of the layers, lowest first; every module under src/ and benchmarks/
 * belongs to exactly one of them (`not-in-a-layer` fails otherwise). A new folder is added here
 * and in ARCHITECTURE.md's map in the same commit.
 */

/** @type {{ name: string, path: string, holds: string }[]} */
const LAYERS = [
  { name: 'core', path: '^src/core/', holds: 'errors, the call stop, JSON scanning, prices, small shared types' },
  { name: 'upstream', path: '^src/upstream/', holds: 'undici pools, adapters per kind, headers, provider errors' },
  { name: 'observability', path: '^src/observability/', holds: 'metrics, logs, traces' },
  { name: 'pipeline', path: '^src/pipeline/', holds: 'flights, the call chain, breakers, accounting, the ports it needs' },
  { name: 'coordination', path: '^src/coordination/', holds: "Redis: implements pipeline's ports" },
  { name: 'governance', path: '^src/governance/', holds: 'keys, teams, budgets, the spend ledger and their store' },
  { name: 'http', path: '^src/http/', holds: 'the edge' },
  { name: 'admin', path: '^src/admin/', holds: 'the admin API (keys, teams, spend) on its own listener' },
  { name: 'console', path: '^src/console/', holds: 'the web console on the admin listener: sessions, pages, live readings, its browser modules' },
  { name: 'server', path: '^src/(app|server|config|config-typos)\\.ts$', holds: 'wiring: reads the configuration, builds every part, owns start and stop' },
  // Entry points: the process, the command line, and the tools outside the production build (the
  // demos in tools/demo/ and the benchmarks) that start a gateway with its mock.
  { name: 'main', path: '^(src/(main|cli|v8-heap|start-up-collection)\\.ts$|benchmarks/|tools/demo/)', holds: 'process entry points, command line, demos, benchmarks' },
];

const higherThan = (index) => LAYERS.slice(index + 1).map((layer) => layer.path);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: modules that need each other belong in one module, or the shared part moves a layer down (ARCHITECTURE.md, "Layers").',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import dependency-cruiser cannot resolve would escape every rule below: fix the path (or the resolution options here).',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'not-in-a-layer',
      severity: 'error',
      comment: 'Every module belongs to one layer of .dependency-cruiser.cjs LAYERS (and ARCHITECTURE.md\'s map): add its folder there.',
      from: { path: '^(src|benchmarks|tools/demo)/', pathNot: LAYERS.map((layer) => layer.path) },
      to: {},
    },
    {
      name: 'gateway-imports-no-tools',
      severity: 'error',
      comment: 'src/ is the production build (tsconfig.build.json): it imports nothing from tools/, benchmarks/ or test/ (ARCHITECTURE.md, "What ships and what does not").',
      from: { path: '^src/' },
      to: { path: '^(tools|benchmarks|test)/' },
    },
    {
      name: 'mock-imports-no-gateway',
      severity: 'error',
      comment: 'The mock upstream is the oracle the gateway is tested against: it shares no code with the gateway (its own error bodies, its own framing), so it imports nothing from src/ or the demos.',
      from: { path: '^tools/mock-upstream/' },
      to: { path: '^(src|tools/demo|benchmarks|test)/' },
    },
    ...LAYERS.slice(0, -1).map((layer, index) => ({
      name: `upward-from-${layer.name}`,
      severity: /** @type {const} */ ('error'),
      comment:
        `${layer.name} (${layer.holds}) imports only from itself and the layers below it (${LAYERS.slice(0, index).map((l) => l.name).join(', ') || 'none'}). ` +
        'Move what both need down a layer, or hand it in from above as a parameter (ARCHITECTURE.md, "Layers").',
      from: { path: layer.path },
      to: { path: higherThan(index) },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
