/**
 * Header lists in the two forms the upstream call passes around: raw lists (name/value pairs in
 * order, as node and undici give and take them) and an answer head's headers (flat as well).
 */

/** The gateway's header naming the upstream that served an answer (FlightHead.upstream; README, Failover). */
export const UPSTREAM_HEADER = 'x-gateway-upstream';

/**
 * An answer head's headers, flat: `[name0, value0, name1, value1, ...]`, lower-case names at even
 * indices, each name once, a repeated header's values as one list at its first place. No object per
 * header: node's `writeHead(status, list)` takes it as it is.
 */
export type AnswerHeaders = readonly (string | readonly string[])[];

/** The first value of the named header in an answer head's headers (lower-case name). An indexed scan over the names: no iterator per call (the request path reads several per answer). */
export function answerValue(headers: AnswerHeaders, name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i] === name) {
      const value = headers[i + 1] as string | readonly string[];
      return typeof value === 'string' ? value : value[0];
    }
  }
  return undefined;
}

/** A copy of an answer head's headers without the named ones (lower-case names). */
export function answerHeadersWithout(headers: AnswerHeaders, names: ReadonlySet<string>): (string | readonly string[])[] {
  const out: (string | readonly string[])[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!names.has(name)) out.push(name, headers[i + 1] as string | readonly string[]);
  }
  return out;
}

/** An answer head's headers from [name, value] pairs (lower-case names, each once). */
export function answerHeadersOf(pairs: readonly (readonly [string, string | readonly string[]])[]): (string | readonly string[])[] {
  const out = new Array<string | readonly string[]>(2 * pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as readonly [string, string | readonly string[]];
    out[2 * i] = pair[0];
    out[2 * i + 1] = pair[1];
  }
  return out;
}

/** An answer head's headers as [name, value] pairs (the form other instances read: coordination/). */
export function answerPairsOf(headers: AnswerHeaders): [string, string | readonly string[]][] {
  const out = new Array<[string, string | readonly string[]]>(headers.length >> 1);
  for (let i = 0; i + 1 < headers.length; i += 2) out[i >> 1] = [headers[i] as string, headers[i + 1] as string | readonly string[]];
  return out;
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
