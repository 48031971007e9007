// The configuration file (INI, like pgBackRest's): [global] then one section
// per stanza, `key=value` lines, `#` comments. Keys: CONFIG_KEYS, every setting
// a command reads from the file (each also a --flag of the same name).
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

export function parseConfig(text: string, path: string): ConfigSections {
  const sections: ConfigSections = new Map([['global', new Map()]]);
  let current = sections.get('global')!;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      const name = section[1]!.trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: expected key=value, found "${line}"`);
    const key = line.slice(0, eq).trim();
    if (!CONFIG_KEYS.has(key)) {
      throw new PgpitrError('ERR_USAGE', `${path}:${i + 1}: unknown setting "${key}"`, { hint: `known settings: ${[...CONFIG_KEYS].join(', ')}` });
    }
    current.set(key, line.slice(eq + 1).trim());
  });
  return sections;
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
