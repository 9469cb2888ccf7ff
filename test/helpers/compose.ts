/** Reading `docker-compose config` output (YAML, two-space indentation) without a Docker engine. */

/** The service blocks of a rendered compose file, by name. */
export function services(yaml: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = yaml.split(/^services:\n/m)[1] ?? '';
  let name = '';
  for (const line of body.split('\n')) {
    if (/^\S/.test(line)) break;
    const head = /^ {2}([\w.-]+):\s*$/.exec(line);
    if (head?.[1] !== undefined) {
      name = head[1];
      out.set(name, '');
    } else if (name !== '') out.set(name, `${out.get(name) ?? ''}${line}\n`);
  }
  return out;
}

/** One environment variable of a rendered service block (single-line values, quoted or not). */
export function envOf(block: string, name: string): string | undefined {
  const match = new RegExp(`^ {6}${name}: (.*)$`, 'm').exec(block);
  if (match?.[1] === undefined) return undefined;
  const raw = match[1].trim();
  return raw.startsWith("'") ? raw.slice(1, -1).replaceAll("''", "'") : raw.replace(/^"|"$/g, '');
}
