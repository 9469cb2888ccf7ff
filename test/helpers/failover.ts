/**
 * Whether this build has the gateway's failover route (UPSTREAMS, x-gateway-upstream,
 * upstream_failovers_total). The tests of the failover demo, compose stack and k6 script that
 * need it are skipped with 'needs failover route' while this is false; it turns true in the
 * commit that merges the route, and is then deleted with its uses.
 */
export const FAILOVER_ROUTE: boolean = true;
