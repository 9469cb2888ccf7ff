import { configVariables } from './config.js';

/**
 * Environment variables that look like the gateway's but are not (`UPSTREAM_ULR`): configuration
 * only reads the names it knows, so a misspelt one is silently ignored and its default applies (for
 * UPSTREAM_URL: the real Anthropic API). main.ts warns about each at start-up, naming the closest
 * known variable.
 *
 * "Looks like the gateway's": within a small edit distance of a known name (1 for names of up to 5
 * characters, so HOME is not taken for HOST; 2 for longer ones; a swap of two neighbours counts 1),
 * or in one of the schema's own families (a first word that two or more known names share: REDIS_,
 * UPSTREAM_, BREAKER_...). Unrelated variables (PATH, HOME, ANTHROPIC_BASE_URL) never match.
 */

export interface NearMiss {
  /** The variable as set. */
  name: string;
  /** The known variable it most likely meant. */
  closest: string;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] as number;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(rows - 1, cols - 1);
}

const firstWord = (name: string): string => name.split('_')[0] ?? name;

/** Known names and the families (first words) that at least two of them share; computed once. */
const KNOWN: readonly string[] = configVariables().map((v) => v.name);
const KNOWN_SET: ReadonlySet<string> = new Set(KNOWN);
const FAMILIES: ReadonlySet<string> = (() => {
  const counts = new Map<string, number>();
  for (const name of KNOWN) if (name.includes('_')) counts.set(firstWord(name), (counts.get(firstWord(name)) ?? 0) + 1);
  return new Set([...counts].filter(([, n]) => n >= 2).map(([word]) => word));
})();

/** Longest name compared (bounds the work per variable; no known name is near this long). */
const MAX_NAME = 64;

/**
 * The set variables that are near misses of known ones, with the known name each most likely meant.
 * `alsoKnown`: names the configuration reads besides the schema's (UPSTREAMS' api_key_env targets).
 */
export function nearMissVariables(env: NodeJS.ProcessEnv, alsoKnown: Iterable<string> = []): NearMiss[] {
  const other = new Set(alsoKnown);
  const misses: NearMiss[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || KNOWN_SET.has(name) || other.has(name) || name.length > MAX_NAME) continue;
    const upper = name.toUpperCase();
    const inFamily = upper.includes('_') && FAMILIES.has(firstWord(upper));
    let closest = '';
    let distance = Infinity;
    for (const known of KNOWN) {
      if (inFamily && firstWord(known) !== firstWord(upper)) continue;
      const d = editDistance(upper, known);
      if (d < distance) [closest, distance] = [known, d];
    }
    const near = distance <= (name.length <= 5 ? 1 : 2);
    if (near || inFamily) misses.push({ name, closest });
  }
  return misses;
}
