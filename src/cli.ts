import { ConfigError, configVariables, loadConfig, redisUrlsOf, type ConfigVariable } from './config.js';

/**
 * The operator's command line: `--help` (every variable, its default and meaning, generated from
 * the configuration schema), `--version`, `--print-config` (the effective configuration, secrets
 * redacted). Pure: it returns what to print and the exit code; main.ts does the writing, so the
 * gateway starts only when no option was given.
 */

export type CliOutcome =
  | { readonly kind: 'start' }
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
