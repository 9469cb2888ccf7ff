import assert from 'node:assert/strict';

/** Header pairs (flat name, value list) as a map; fails when a name appears twice (each header is sent once). */
export function headerMap(pairs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i] as string;
    assert.equal(out.has(name), false, `header ${name} sent twice`);
    out.set(name, pairs[i + 1] as string);
  }
  return out;
}
