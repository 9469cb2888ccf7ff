import { ConfigError, configVariables, loadConfig, redisUrlsOf, type ConfigVariable } from './config.js';

/**
 * The operator's command line: `--help` (every variable, its default and meaning, generated from
 * the configuration schema), `--version`, `--print-config` (the effective configuration, secrets
 * redacted). Pure: it returns what to print and the exit code; main.ts does the writing, so the
 * gateway starts only when no option was given.
 */

export type CliOutcome =
  | { readonly kind: 'start' }
  /** An admin command (keys, teams, spend): main.ts runs runAdminCli. */
  | { readonly kind: 'admin' }
  | { readonly kind: 'exit'; readonly code: number; readonly stdout: string; readonly stderr: string };

const PROGRAM = 'claude-gateway';
const REDACTED = '<redacted>';

/**
 * Names that mark a whole value as a secret: API keys, key lists, hash keys, passwords, secrets and
 * tokens (ANTHROPIC_API_KEY, GATEWAY_API_KEYS, TENANT_HASH_KEY, ..._PASSWORD). The configuration
 * table marks its secrets itself (`secret: true`; a unit test holds every table name this rule
 * matches to be marked); the rule is the backstop for a variable added without the mark.
 */
const SECRET_NAME = /(?:^|_)(?:KEY|KEYS|PASSWORD|PASS|SECRET|SECRETS|TOKEN|TOKENS|CREDENTIALS?)$|PASSWORD/;

export function isSecretVariable(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Whether `--print-config` must hide a variable's whole value: the table says so, or its name does. */
function isSecret(variable: ConfigVariable): boolean {
  return variable.secret === true || isSecretVariable(variable.name);
}

/** A value that starts like a URL (`scheme://`). */
const URL_START = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * What may be shown of a value: nothing of a secret variable (`secret`: the configuration table's
 * mark; by default, the name rule). Every URL (the value itself when it
 * starts like one; each Redis endpoint of REDIS_URL and REDIS_CLUSTER_NODES, split as the gateway
 * splits them) is shown as the WHATWG URL parser reads it, with its password (and only that)
 * replaced; a URL that parser cannot read is not shown at all, since nothing tells where its
 * password ends. The gateway's Redis client reads the same parser's answer.
 */
export function redact(name: string, value: string, secret: boolean = isSecretVariable(name)): string {
  if (secret) return REDACTED;
  const urls = redisUrlsOf(name, value) ?? (URL_START.test(value) ? [value] : undefined);
  return urls === undefined ? value : urls.map(redactUrl).join(',');
}

function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return REDACTED;
  }
  if (url.password === '') return text;
  return `${url.protocol}//${url.username}:${REDACTED}@${url.host}${url.pathname}${url.search}${url.hash}`;
}

function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

export function helpText(version: string, variables: readonly ConfigVariable[] = configVariables()): string {
  const out = [
    `${PROGRAM} ${version}: a coalescing, observable gateway in front of Anthropic's Claude API`,
    '',
    'Usage: node dist/src/main.js [option]      (npm start runs it with no option)',
    '',
    'Options:',
    '  (none)          start the gateway, configured by the environment variables below',
    '  -h, --help      print this help and exit',
    '  -v, --version   print the version and exit',
    '  --print-config  validate the configuration, print its effective values (secrets redacted) and exit;',
    '                  exit 1, naming the variable, when the configuration is invalid',
    '  keys|teams|spend ...  administer keys, teams and spend through a running gateway\'s admin API',
    '                  (ADMIN_URL, ADMIN_API_KEY; `keys` alone prints the usage)',
    '',
    'Environment variables (an empty value counts as unset):',
  ];
  for (const v of variables) {
    const fallback = v.defaultValue === undefined ? 'unset' : v.defaultValue === '' ? "''" : v.defaultValue;
    out.push(`  ${v.name}  [default: ${fallback}]${isSecret(v) ? '  (secret: never printed)' : ''}`);
    out.push(wrap(v.description, 100, '      '));
  }
  out.push('');
  return out.join('\n');
}

/**
 * The effective configuration as environment lines, after validation: the value given (trimmed,
 * redacted) or the default, and `# NAME unset` for optional variables left out. Throws ConfigError.
 */
export function printConfig(env: NodeJS.ProcessEnv, version: string, variables: readonly ConfigVariable[] = configVariables()): string {
  loadConfig(env);
  const out = [`# ${PROGRAM} ${version}: effective configuration (secrets redacted)`];
  for (const v of variables) {
    // The rule loadConfig applies: values are trimmed, and empty means unset.
    const given = env[v.name]?.trim();
    if (given !== undefined && given !== '') out.push(`${v.name}=${redact(v.name, given, isSecret(v))}  # environment`);
    else if (v.defaultValue !== undefined) out.push(`${v.name}=${v.defaultValue}  # default`);
    else out.push(`# ${v.name} unset`);
  }
  out.push('');
  return out.join('\n');
}

export function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, version: string): CliOutcome {
  if (argv.length === 0) return { kind: 'start' };
  if (ADMIN_COMMANDS.has(argv[0] as string)) return { kind: 'admin' };
  const [option, ...rest] = argv;
  const usage = `usage: node dist/src/main.js [--help | --version | --print-config]\n`;
  if (rest.length > 0) return { kind: 'exit', code: 2, stdout: '', stderr: `${PROGRAM}: one option at most\n${usage}` };
  switch (option) {
    case '-h':
    case '--help':
      return { kind: 'exit', code: 0, stdout: helpText(version), stderr: '' };
    case '-v':
    case '--version':
      return { kind: 'exit', code: 0, stdout: `${PROGRAM} ${version}\n`, stderr: '' };
    case '--print-config':
      try {
        return { kind: 'exit', code: 0, stdout: printConfig(env, version), stderr: '' };
      } catch (err) {
        if (err instanceof ConfigError) return { kind: 'exit', code: 1, stdout: '', stderr: `${PROGRAM}: ${err.message}\n` };
        throw err;
      }
    default:
      return { kind: 'exit', code: 2, stdout: '', stderr: `${PROGRAM}: unknown option ${JSON.stringify(option)}\n${usage}` };
  }
}

/** Variables the admin command line reads that the gateway does not (main.ts: not typos of gateway variables). */
export const CLI_VARIABLES: readonly string[] = ['ADMIN_URL'];

/** The admin commands (they talk to a running gateway's admin API): `keys ...`, `teams ...`, `spend ...`. */
export const ADMIN_COMMANDS: ReadonlySet<string> = new Set(['keys', 'teams', 'spend']);

export const ADMIN_USAGE = `usage (talks to the admin API at ADMIN_URL, default http://127.0.0.1:<ADMIN_PORT or 8081>, with ADMIN_API_KEY):
  ${PROGRAM} keys create --team TEAM [--name N] [--user U] [--budget-usd USD] [--budget-tokens N] [--period day|week|month]
                          [--models a,b*] [--rpm N] [--tpm N] [--max-concurrent N] [--expires 2027-01-01]
  ${PROGRAM} keys list [--team TEAM]
  ${PROGRAM} keys get|rotate|revoke KEY_ID
  ${PROGRAM} teams create NAME [--budget-usd USD] [--budget-tokens N] [--period day|week|month]
  ${PROGRAM} teams list
  ${PROGRAM} spend --group-by team|key|user|mode|model|upstream|day|session [--from DATE] [--to DATE] [--team TEAM] [--key KEY_ID]
  (--json prints the admin API's JSON instead of a table; TEAM is a team id or name; --period defaults to month)
`;

interface AdminCall {
  (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

type Row = Record<string, unknown>;

/** A small fixed-width table of `columns` (nested values as JSON). */
function table(rows: readonly Row[], columns: readonly string[]): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v));
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: readonly string[]): string => values.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n') + '\n';
}

class CliProblem extends Error {}

/**
 * Runs one admin command against the admin API (`call` does the HTTP; main.ts hands it fetch).
 * Exit codes: 0 done, 1 the API refused (its message on stderr), 2 a usage error.
 */
export async function runAdminCli(argv: readonly string[], env: NodeJS.ProcessEnv, fetchImpl: typeof fetch = fetch): Promise<{ code: number; stdout: string; stderr: string }> {
  const { parseArgs } = await import('node:util');
  const adminKey = env.ADMIN_API_KEY?.trim();
  if (adminKey === undefined || adminKey === '') return { code: 2, stdout: '', stderr: `${PROGRAM}: set ADMIN_API_KEY (the gateway's admin credential)\n` };
  const base = (env.ADMIN_URL?.trim() || `http://127.0.0.1:${env.ADMIN_PORT?.trim() || '8081'}`).replace(/\/+$/, '');
  const call: AdminCall = async (method, path, body) => {
    let res: Response;
    try {
      res = await fetchImpl(base + path, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new CliProblem(`cannot reach the admin API at ${base} (${(err as Error).message})`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (res.status >= 300) {
      const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? text;
      throw new CliProblem(`the admin API answered ${res.status}: ${message}`);
    }
    return { status: res.status, body: parsed };
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        team: { type: 'string' },
        name: { type: 'string' },
        user: { type: 'string' },
        'budget-usd': { type: 'string' },
        'budget-tokens': { type: 'string' },
        period: { type: 'string' },
        models: { type: 'string' },
        rpm: { type: 'string' },
        tpm: { type: 'string' },
        'max-concurrent': { type: 'string' },
        expires: { type: 'string' },
        'group-by': { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    return { code: 2, stdout: '', stderr: `${PROGRAM}: ${(err as Error).message}\n${ADMIN_USAGE}` };
  }
  const { values: o, positionals } = parsed;
  const [command, action, argument] = positionals;
  const number = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new CliProblem(`--${flag} must be a number`);
    return n;
  };
  const budgets = (): unknown[] | undefined => {
    const usd = number('budget-usd', o['budget-usd']);
    const tokens = number('budget-tokens', o['budget-tokens']);
    if (usd === undefined && tokens === undefined) return undefined;
    return [{ period: o.period ?? 'month', ...(usd === undefined ? {} : { usd }), ...(tokens === undefined ? {} : { tokens }) }];
  };
  const teamId = async (team: string | undefined): Promise<string> => {
    if (team === undefined) throw new CliProblem('--team is required');
    const teams = ((await call('GET', '/admin/teams')).body as { data: { id: string; name: string }[] }).data;
    const found = teams.find((t) => t.id === team) ?? teams.find((t) => t.name === team);
    if (found === undefined) throw new CliProblem(`no team has the id or name ${JSON.stringify(team)}`);
    return found.id;
  };
  const print = (body: unknown, rows?: readonly Row[], columns?: readonly string[]): string =>
    o.json === true || rows === undefined || columns === undefined ? `${JSON.stringify(body, null, 2)}\n` : table(rows, columns);
  const KEY_COLUMNS = ['id', 'name', 'prefix', 'team_id', 'user_id', 'expires_at', 'revoked_at'];
  try {
    if (command === 'keys' && action === 'create') {
      const limits: Row = {};
      if (o.models !== undefined) limits.models = o.models.split(',').map((m) => m.trim()).filter((m) => m !== '');
      if (o.rpm !== undefined) limits.requests_per_minute = number('rpm', o.rpm);
      if (o.tpm !== undefined) limits.tokens_per_minute = number('tpm', o.tpm);
      if (o['max-concurrent'] !== undefined) limits.max_concurrent = number('max-concurrent', o['max-concurrent']);
      const body = {
        team_id: await teamId(o.team),
        ...(o.name === undefined ? {} : { name: o.name }),
        ...(o.user === undefined ? {} : { user_id: o.user }),
        ...(Object.keys(limits).length === 0 ? {} : { limits }),
        ...(budgets() === undefined ? {} : { budgets: budgets() }),
        ...(o.expires === undefined ? {} : { expires_at: o.expires }),
      };
      const created = (await call('POST', '/admin/keys', body)).body as { key: Row; secret: string };
      return { code: 0, stdout: print(created, [{ ...created.key, secret: created.secret }], ['id', 'name', 'team_id', 'secret']), stderr: 'The secret is shown this once: store it now.\n' };
    }
    if (command === 'keys' && action === 'list') {
      const body = (await call('GET', '/admin/keys')).body as { data: Row[] };
      const team = o.team === undefined ? undefined : await teamId(o.team);
      const data = team === undefined ? body.data : body.data.filter((k) => k.team_id === team);
      return { code: 0, stdout: print({ data }, data, KEY_COLUMNS), stderr: '' };
    }
    if (command === 'keys' && (action === 'get' || action === 'rotate' || action === 'revoke')) {
      if (argument === undefined) throw new CliProblem(`keys ${action} needs a KEY_ID`);
      const id = encodeURIComponent(argument);
      if (action === 'get') {
        const key = (await call('GET', `/admin/keys/${id}`)).body as Row;
        return { code: 0, stdout: print(key, [key], KEY_COLUMNS), stderr: '' };
      }
      if (action === 'rotate') {
        const rotated = (await call('POST', `/admin/keys/${id}/rotate`)).body as { key: Row; secret: string };
        return { code: 0, stdout: print(rotated, [{ ...rotated.key, secret: rotated.secret }], ['id', 'name', 'team_id', 'secret']), stderr: 'The new secret is shown this once; the old one no longer works.\n' };
      }
      const revoked = (await call('POST', `/admin/keys/${id}/revoke`)).body as Row;
      return { code: 0, stdout: print(revoked, [revoked], KEY_COLUMNS), stderr: '' };
    }
    if (command === 'teams' && action === 'create') {
      if (argument === undefined) throw new CliProblem('teams create needs a NAME');
      const team = (await call('POST', '/admin/teams', { name: argument, ...(budgets() === undefined ? {} : { budgets: budgets() }) })).body as Row;
      return { code: 0, stdout: print(team, [team], ['id', 'name', 'budgets']), stderr: '' };
    }
    if (command === 'teams' && action === 'list') {
      const body = (await call('GET', '/admin/teams')).body as { data: Row[] };
      return { code: 0, stdout: print(body, body.data, ['id', 'name', 'budgets']), stderr: '' };
    }
    if (command === 'spend' && action === undefined) {
      const query = new URLSearchParams({ groupBy: o['group-by'] ?? 'team' });
      if (o.from !== undefined) query.set('from', o.from);
      if (o.to !== undefined) query.set('to', o.to);
      if (o.team !== undefined) query.set('team', await teamId(o.team));
      if (o.key !== undefined) query.set('key', o.key);
      const body = (await call('GET', `/admin/spend?${query.toString()}`)).body as { data: Row[] };
      return { code: 0, stdout: print(body, body.data, ['group', 'requests', 'cost_usd', 'saved_usd', 'input_tokens', 'output_tokens']), stderr: '' };
    }
    return { code: 2, stdout: '', stderr: `${PROGRAM}: unknown command ${JSON.stringify(positionals.join(' '))}\n${ADMIN_USAGE}` };
  } catch (err) {
    if (err instanceof CliProblem) return { code: 1, stdout: '', stderr: `${PROGRAM}: ${err.message}\n` };
    throw err;
  }
}
