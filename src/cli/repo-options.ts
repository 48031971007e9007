// Options shared by the repository commands: --repo, --stanza, --config,
// compression and connection settings, each from the command line, the
// environment (PGPITR_REPO, PGPITR_STANZA, PGPITR_CONFIG) or the configuration
// file, in that order of precedence.

import { connectionOptionSpec } from './connection-options.js';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { usageError } from '../common/errors.js';
import { loadConfig, configValue } from './config-file.js';
import { resolveConnectionSettings } from '../protocol/conninfo.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';
import { levelRange } from '../storage/compress/levels.js';
import type { CompressionAlgorithm } from '../storage/compress/common.js';

export const repoOptionSpec = {
  ...connectionOptionSpec,
  repo: { type: 'string' },
  stanza: { type: 'string' },
  config: { type: 'string' },
  'compress-type': { type: 'string' },
  'compress-level': { type: 'string' },
  output: { type: 'string', short: 'o' },
  'archive-timeout': { type: 'string' },
  help: { type: 'boolean', short: '?' },
} as const;

export interface RepoOptions {
  repo: string;
  stanza: string;
  compression: CompressionAlgorithm | 'none';
  level: number | undefined;
  output: 'text' | 'json';
  archiveTimeoutMs: number;
  connection: ConnectionSettings;
  positionals: string[];
  help: boolean;
}

export function parseRepoOptions(command: string, argv: string[], opts: { needStanza?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): RepoOptions {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: repoOptionSpec, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError((e as Error).message, `try "pgpitr ${command} --help"`);
  }
  const v = parsed.values;
  const configPath = v.config ?? env.PGPITR_CONFIG;
  const config = configPath ? loadConfig(configPath) : null;
  const stanza = v.stanza ?? env.PGPITR_STANZA ?? '';
  const get = (key: string, flag: string | undefined) => flag ?? configValue(config, stanza || undefined, key);
  const repo = get('repo', v.repo ?? env.PGPITR_REPO);
  const help = v.help === true;
  if (!help && !repo) throw usageError('no repository given', 'use --repo PATH, PGPITR_REPO, or repo= in the configuration file');
  if (!help && opts.needStanza !== false && !stanza) throw usageError('no stanza given', 'use --stanza NAME or PGPITR_STANZA');
  const type = get('compress-type', v['compress-type']) ?? 'zstd';
  if (!['none', 'gzip', 'lz4', 'zstd'].includes(type)) throw usageError(`invalid compress-type "${type}"`, 'use none, gzip, lz4 or zstd');
  const levelText = get('compress-level', v['compress-level']);
  let level: number | undefined;
  if (levelText !== undefined) {
    level = Number(levelText);
    const range = type === 'none' ? null : levelRange(type as CompressionAlgorithm);
    if (!Number.isInteger(level) || (range && (level < range.min || level > range.max))) {
      throw usageError(`invalid compress-level "${levelText}" for ${type}`, range ? `use ${range.min} to ${range.max}` : undefined);
    }
  }
  const output = v.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw usageError(`invalid output format "${output}", must be "text" or "json"`);
  const timeoutText = get('archive-timeout', v['archive-timeout']) ?? '60';
  const timeout = Number(timeoutText);
  if (!Number.isFinite(timeout) || timeout <= 0) throw usageError(`invalid archive-timeout "${timeoutText}"`, 'give seconds, e.g. 60');
  const connection = resolveConnectionSettings(
    {
      dbname: v.dbname ?? configValue(config, stanza, 'pg-database'),
      host: v.host ?? configValue(config, stanza, 'pg-host'),
      port: v.port ?? configValue(config, stanza, 'pg-port'),
      user: v.username ?? configValue(config, stanza, 'pg-user'),
    },
    env,
  );
  return {
    repo: repo ? resolve(repo) : '',
    stanza,
    compression: type as RepoOptions['compression'],
    level,
    output,
    archiveTimeoutMs: timeout * 1000,
    connection,
    positionals: parsed.positionals,
    help,
  };
}

export const REPO_OPTIONS_HELP = `Repository options:
      --repo=PATH        repository directory (or PGPITR_REPO, or repo= in the config file)
      --stanza=NAME      the cluster's name in the repository (or PGPITR_STANZA)
      --config=FILE      configuration file (or PGPITR_CONFIG): INI with [global] and [STANZA] sections
      --compress-type=none|gzip|lz4|zstd   compression of stored files (default zstd)
      --compress-level=N compression level
  -o, --output=text|json
Connection options (commands that talk to the server):
  -d, --dbname=CONNSTR  -h, --host=HOST  -p, --port=PORT  -U, --username=NAME
`;
