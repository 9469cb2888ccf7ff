import { setFlagsFromString } from 'node:v8';

/**
 * V8 heap settings for the gateway process. Imported first by main.ts, so they hold before any
 * request code runs (and in every WORKERS process, each of which runs main.ts).
 *
 * Allocation-site pretenuring is off. V8 watches the object and array literals each code site
 * allocates; when most of them survive young-generation collections, it decides, once and for
 * good, to allocate that site's objects directly in the old generation. A gateway that starts under
 * load (a restart during a rollout, a burst on a fresh process) keeps every request's objects alive
 * far longer than usual while its code is cold, and while the lingering window's catch-up holds
 * answers (COALESCE_LINGER_CATCHUP_MS): V8 then pretenures the per-request sites (header pairs,
 * heads, answers) for the rest of the process's life. Measured: 0.6 MB promoted per scavenge instead
 * of 0.1 MB, scavenges twice as long, about 40-50 µs more CPU per request at 1 KB, 10 s after the
 * start-up had passed. Nearly everything a proxy allocates dies with its request, so the decision
 * helps nothing here. An operator who wants it back passes `--allocation-site-pretenuring` to node.
 */
const PRETENURING = 'allocation-site-pretenuring';

if (!process.execArgv.some((arg) => arg.includes(PRETENURING))) setFlagsFromString(`--no-${PRETENURING}`);
