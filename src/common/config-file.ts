// The configuration file (INI, like pgBackRest's): [global] then one section
// per stanza, `key=value` lines, `#` comments. Keys: CONFIG_KEYS, every setting
// a command reads from the file (each also a --flag of the same name), and the
// settings of repository N, repoN-KEY with KEY in REPO_KEYS (as pgBackRest's).
// Found through --config or PGPITR_CONFIG; flags override it. Here, not in cli/, so
// that the CLI itself touches no file: it parses options and calls one function.

import { readFileSync } from 'node:fs';
import { PgpitrError } from './errors.js';

export type ConfigSections = Map<string, Map<string, string>>;

export const CONFIG_KEYS = new Set([
  'repo',
  'compress-type',
  'compress-level',
  'pg-host',
  'pg-port',
  'pg-user',
  'pg-database',
  'archive-timeout',
  'archive-async',
  'spool-path',
  'process-max',
  'archive-push-queue-max',
  'archive-get-queue-max',
  'retention-full',
  'retention-window',
]);

/** The settings of repository N, named repoN-KEY (N from 1 to 256). */
export const REPO_KEYS = new Set([
  'type',
  'path',
  's3-endpoint',
  's3-bucket',
  's3-region',
  's3-key',
  's3-key-secret',
  's3-token',
  's3-uri-style',
  'storage-port',
  'storage-host',
  'storage-verify-tls',
  'storage-ca-file',
  'cipher-type',
  'cipher-pass',
  'retention-full',
  'retention-window',
]);

/** Secrets: never accepted on the command line, where any user sees them in the process list. */
export const SECRET_REPO_KEYS = new Set(['s3-key', 's3-key-secret', 's3-token', 'cipher-pass']);

/** repoN-KEY split into N and KEY, or null when the name is not a repository setting. */
export function repoKey(name: string): { index: number; key: string } | null {
  const m = /^repo([1-9]\d{0,2})-(.+)$/.exec(name);
  if (!m || !REPO_KEYS.has(m[2]!) || Number(m[1]) > 256) return null;
  return { index: Number(m[1]), key: m[2]! };
}

/** The commands a [section:command] of the configuration file may name. */
const CONFIG_COMMANDS = new Set(['archive-get', 'archive-push', 'backup', 'check', 'expire', 'info', 'receive-wal', 'restore', 'stanza-create', 'stanza-delete', 'verify']);

export function isConfigKey(key: string): boolean {
  return CONFIG_KEYS.has(key) || repoKey(key) !== null;
}

export function parseConfig(text: string, path: string): ConfigSections {
  const sections: ConfigSections = new Map([['global', new Map()]]);
  let current = sections.get('global')!;
  const lineOf = new Map<Map<string, string>, Map<string, number>>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      const name = section[1]!.trim();
      const command = name.includes(':') ? name.slice(name.indexOf(':') + 1).trim() : null;
      if (command !== null && !CONFIG_COMMANDS.has(command)) {
        throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: section [${name}] names no pgpitr command ("${command}")`, { hint: `a command section is [global:COMMAND] or [STANZA:COMMAND], with COMMAND one of ${[...CONFIG_COMMANDS].join(', ')}` });
      }
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    // The line itself is not shown: it may hold a secret (a key and its value without '='), and from
    // archive_command or restore_command the message lands in the server's log.
    if (eq <= 0) {
      const first = line.split(/[\s:]/)[0]!;
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: expected key=value${isConfigKey(first) ? ` for "${first}"` : ''} (the line is not shown: it may hold a secret)`, { hint: 'write each setting as key=value, one per line' });
    }
    const key = line.slice(0, eq).trim();
    if (!isConfigKey(key)) {
      // Shown only when it looks like a setting's name: a secret's second line (a base64 passphrase ends in '=') is not.
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: unknown setting${/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/.test(key) && key.length <= 40 ? ` "${key}"` : ' (not shown: the line may hold a secret)'}`, {
        hint: `known settings: ${[...CONFIG_KEYS].join(', ')}, and repoN-KEY for repository N with KEY one of ${[...REPO_KEYS].join(', ')}`,
      });
    }
    const before = lineOf.get(current)?.get(key);
    if (before !== undefined) {
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: "${key}" is set again (line ${before} sets it in the same section)`, { hint: 'keep one of the two lines (pgBackRest refuses this too)' });
    }
    if (!lineOf.has(current)) lineOf.set(current, new Map());
    lineOf.get(current)!.set(key, i + 1);
    const value = line.slice(eq + 1).trim();
    // Not a comment here: "repo1-path=/mnt/backup  # nfs" would be a path ending in "  # nfs", elsewhere than meant.
    // (A passphrase or key may hold anything.)
    if (/\s[#;]/.test(value) && !/(?:pass|secret|key)$/.test(key)) {
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: the value of "${key}" holds " #" or " ;": comments go on lines of their own`, { hint: 'move the comment to its own line, starting with # or ;' });
    }
    // Kept literally, quotes would become part of a path ("/x y" with its quotes, black-box run X).
    if (/^(["']).*\1$/.test(value) && value.length >= 2 && !/(?:pass|secret|key)$/.test(key)) {
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: the value of "${key}" is in quotes, which would be kept as part of it`, { hint: 'write it without quotes: a value runs from after "=" to the end of the line (spaces inside need no quoting)' });
    }
    current.set(key, value);
  });
  return sections;
}

/**
 * The sections as one command sees them: pgBackRest's command sections ([global:archive-push],
 * [main:restore]) merged over the section they name, so that a setting is taken from
 * [stanza:command], [stanza], [global:command], then [global]. Other commands' sections are left out.
 */
export function configForCommand(config: ConfigSections, command: string): ConfigSections {
  const out: ConfigSections = new Map();
  for (const [name, values] of config) if (!name.includes(':')) out.set(name, values);
  for (const [name, values] of config) {
    const colon = name.indexOf(':');
    if (colon < 0 || name.slice(colon + 1).trim() !== command) continue;
    const base = name.slice(0, colon).trim();
    out.set(base, new Map([...(out.get(base) ?? new Map<string, string>()), ...values]));
  }
  return out;
}

export function loadConfig(path: string): ConfigSections {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PgpitrError('ERR_USAGE', `cannot read configuration file "${path}": ${(e as Error).message}`, { hint: 'check --config or PGPITR_CONFIG' });
  }
  return parseConfig(text, path);
}

/** A setting for a stanza: its own section first, then [global]. */
export function configValue(config: ConfigSections | null, stanza: string | undefined, key: string): string | undefined {
  if (!config) return undefined;
  return (stanza ? config.get(stanza)?.get(key) : undefined) ?? config.get('global')?.get(key);
}
