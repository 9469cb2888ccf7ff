import { createMockUpstream, parseScript, type MockUpstream } from '../mock-upstream/index.js';

/**
 * The failover demo's upstreams (`npm run demo -- --failover`): two mock Anthropic APIs and the
 * UPSTREAMS value naming them. The primary plays a script that takes it down for a while and
 * brings it back (it refuses connections while down, as a crashed upstream would), and serves its
 * control plane on a port of its own so it can be taken down or revived by hand. The secondary
 * stays healthy. Both run in pass-through mode (no gateway-held key), so any client key works.
 */

/** Primary healthy 20 s, down 20 s, over and over. */
export const DEFAULT_PRIMARY_SCRIPT = 'healthy:20s,down:20s,repeat';

export interface FailoverUpstreams {
  primary: MockUpstream;
  /** The primary's control-only url (/_mock/*), reachable while it is down. */
  primaryControlUrl: string;
  secondary: MockUpstream;
  /** The gateway's UPSTREAMS: primary in tier 0, secondary in tier 1. */
  upstreams: string;
  script: string;
  close(): Promise<void>;
}

/** The primary's failure script, checked; an invalid one throws naming `--primary-script`. */
export function primaryScript(script: string): Exclude<ReturnType<typeof parseScript>, string> {
  const checked = parseScript(script);
  if (typeof checked === 'string') throw new Error(`--primary-script: ${checked}`);
  return checked;
}

/** A demo's ports: `basePort + offset`, or all ephemeral when `basePort` is 0. */
export function demoPorts(basePort: number): (offset: number) => number {
  return (offset) => (basePort === 0 ? 0 : basePort + offset);
}

/**
 * Starts the two mocks: primary on `basePort`, its control plane on basePort + 1, the secondary
 * on basePort + 2 (all ephemeral when basePort is 0). Throws on an invalid script.
 */
export async function startFailoverUpstreams(basePort: number, script = DEFAULT_PRIMARY_SCRIPT): Promise<FailoverUpstreams> {
  const checked = primaryScript(script);
  const port = demoPorts(basePort);
  const secondary = await createMockUpstream({ port: port(2), eventIntervalMs: 20 });
  let primary: MockUpstream;
  try {
    primary = await createMockUpstream({ port: port(0), controlPort: port(1), eventIntervalMs: 20, script: checked });
  } catch (err) {
    await secondary.close();
    throw err;
  }
  const upstreams = JSON.stringify([
    { name: 'primary', url: primary.url, tier: 0 },
    { name: 'secondary', url: secondary.url, tier: 1 },
  ]);
  return {
    primary,
    primaryControlUrl: primary.controlUrl ?? '',
    secondary,
    upstreams,
    script,
    close: async () => {
      await Promise.all([primary.close(), secondary.close()]);
    },
  };
}

/** The banner lines of the failover demo (after the gateway started). */
export function failoverBanner(gatewayUrl: string, up: FailoverUpstreams): string[] {
  return [
    '',
    `  claude-gateway failover demo: gateway ${gatewayUrl}`,
    `    primary   ${up.primary.url}  (tier 0; script "${up.script}"; control ${up.primaryControlUrl})`,
    `    secondary ${up.secondary.url}  (tier 1; healthy)`,
    `    UPSTREAMS=${up.upstreams}`,
    '',
    '  Watch which upstream answers (x-gateway-upstream) while the primary goes down and comes back:',
    `    while sleep 1; do curl -s -o /dev/null -w '%{http_code} %header{x-gateway-upstream}\\n' ${gatewayUrl}/v1/messages \\`,
    `      -H 'x-api-key: demo-key' -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\`,
    `      -d '{"model":"claude-sonnet-5","max_tokens":16,"messages":[{"role":"user","content":"Hello"}]}'; done`,
    '',
    '  Take the primary down or bring it back by hand (a script in the body, see README "Failover demo"):',
    `    curl -s ${up.primaryControlUrl}/_mock/script -d down      curl -s ${up.primaryControlUrl}/_mock/script -d healthy`,
    `  The moves:  curl -s ${gatewayUrl}/metrics | grep upstream_failovers_total`,
    '',
    '',
  ];
}
