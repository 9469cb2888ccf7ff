/**
 * Header lists in the two forms the upstream call passes around: raw lists (name/value pairs in
 * order, as node and undici give and take them) and an answer head's [name, value] pairs.
 */

/** An answer head's headers: [lower-case name, value(s)] pairs. */
export type HeaderPairs = readonly (readonly [string, string | readonly string[]])[];

/** The first value of the named header in an answer head's pairs (lower-case name). An indexed scan: no iterator per call (the request path reads several per answer). */
export function pairValue(headers: HeaderPairs, name: string): string | undefined {
  for (let i = 0; i < headers.length; i++) {
    const pair = headers[i] as HeaderPairs[number];
    if (pair[0] === name) return typeof pair[1] === 'string' ? pair[1] : pair[1][0];
  }
  return undefined;
}

/** The list without the named headers (names lower-case). */
export function withoutHeaders(list: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    if (!names.has(name.toLowerCase())) out.push(name, list[i + 1] as string);
  }
  return out;
}

/** Only the named headers of the list (names lower-case), in order: an adapter's allowlist. */
export function onlyHeaders(list: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  if (names.size === 0) return out;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    if (names.has(name.toLowerCase())) out.push(name, list[i + 1] as string);
  }
  return out;
}

/** Every value of the named header (lower-case name), in order. */
export function headerValues(list: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if ((list[i] as string).toLowerCase() === name) out.push(list[i + 1] as string);
  }
  return out;
}

/** Comma-separated values of the named header, split, trimmed, empty ones dropped (e.g. `anthropic-beta`). */
export function listValues(list: readonly string[], name: string): string[] {
  return headerValues(list, name)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}
