// Options shared by the repository commands: --repo, --stanza, --config,
// compression and connection settings, each from the command line, the
// environment (PGPITR_REPO, PGPITR_STANZA, PGPITR_CONFIG) or the configuration
// file, in that order of precedence. Paths (repository, spool, configuration
// file) must be absolute.

import { argsError } from './args-error.js';
import { connectionOptionSpec } from './connection-options.js';
import { parseArgs } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import { usageError } from '../common/errors.js';
import { printLine } from './output.js';
import { configForCommand, loadConfig, configValue, repoKey, REPO_KEYS, SECRET_REPO_KEYS } from '../common/config-file.js';
import type { ConfigSections } from '../common/config-file.js';
import { envName, repositoryOverlap, resolveRepositories } from '../repo/repo-settings.js';
import { secretsOnlyFor } from './config-secrets.js';
import type { RepoSettings } from '../repo/repo-settings.js';
import { resolveConnectionSettings } from '../protocol/conninfo.js';
import type { ConnectionFlags, ConnectionSettings } from '../protocol/conninfo.js';
import { levelRange } from '../storage/compress/levels.js';
import type { CompressionAlgorithm } from '../storage/compress/common.js';
import { DEFAULT_SPOOL_PATH } from '../archiving/spool.js';

export const repoOptionSpec = {
  ...connectionOptionSpec,
  repo: { type: 'string' },
  stanza: { type: 'string' },
  config: { type: 'string' },
  'compress-type': { type: 'string' },
  'compress-level': { type: 'string' },
  output: { type: 'string', short: 'o' },
  'archive-timeout': { type: 'string' },
  'archive-async': { type: 'boolean' },
  'no-archive-async': { type: 'boolean' },
  'spool-path': { type: 'string' },
  'process-max': { type: 'string' },
  'archive-push-queue-max': { type: 'string' },
  'archive-get-queue-max': { type: 'string' },
  // Internal: runs the background pusher of asynchronous archive-push for this pg_wal.
  pusher: { type: 'string' },
  // Internal: runs the background fetcher of asynchronous archive-get.
  fetcher: { type: 'boolean' },
  help: { type: 'boolean', short: '?' },
} as const;

export interface RepoOptions {
  /** Every repository configured (by N); empty only with --help. */
  repos: RepoSettings[];
  /** N of --repo N: the one repository a command that works on one (or on one asked for) uses. */
  repoSelected: number | undefined;
  /**
   * The options another process, not started by this one (the server's restore_command), needs to
   * reach the same repositories: --config, the legacy --repo PATH, --repoN-KEY flags for settings given
   * by flags or PGPITR_REPON_* (for restore, from the configuration file as restore read it too; never
   * a secret), --repo N.
   */
  reachArgs: string[];
  /** Secrets that came from the environment only, which such a process will not have. */
  envOnlySecrets: string[];
  /** restore: secrets the configuration file gives in restore's own sections only (archive-get, from restore_command, reads its own). */
  ownSectionSecrets: string[];
  stanza: string;
  compression: CompressionAlgorithm | 'none';
  level: number | undefined;
  output: 'text' | 'json';
  archiveTimeoutMs: number;
  archiveAsync: boolean;
  /** Whether archive-async was set (flag or configuration file), not the default (restore's default differs). */
  archiveAsyncGiven: boolean;
  spoolPath: string;
  processMax: number;
  /** Whether process-max was set (flag or configuration file), not the default. */
  processMaxGiven: boolean;
  /** Bytes; null: no limit. */
  queueMaxBytes: number | null;
  /** Set in the background pusher: the pg_wal directory it serves. */
  pusherPgWal: string | undefined;
  /** Bytes of WAL asynchronous archive-get keeps prefetched. */
  getQueueMaxBytes: number;
  /** Set in the background fetcher of asynchronous archive-get. */
  fetcher: boolean;
  connection: ConnectionSettings;
  positionals: string[];
  /** A setting of the configuration file (the stanza's section, then [global]). */
  configValue(key: string): string | undefined;
  /** Values of the command's own options (opts.extra). */
  extra: Record<string, string | boolean | string[] | boolean[] | undefined>;
  /** The arguments without the positional ones, to start a helper process with the same settings. */
  optionArgs: string[];
  help: boolean;
}

/** Options a command adds to the shared ones (parseArgs' format); their values come back in RepoOptions.extra. */
export type ExtraOptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/**
 * A value option given twice: parseArgs keeps the last, silently (two --repo paths, and WAL went
 * to one of them). Refused, as the configuration file refuses a key given twice; options that
 * take several values say so (multiple).
 */
export function refuseRepeated(tokens: readonly { kind: string; name?: string }[] | undefined, spec: Record<string, { type: string; multiple?: boolean }>, command: string): void {
  const seen = new Set<string>();
  for (const t of tokens ?? []) {
    if (t.kind !== 'option' || t.name === undefined) continue;
    const o = spec[t.name];
    if (!o || o.type !== 'string' || o.multiple === true) continue;
    if (seen.has(t.name)) throw usageError(`--${t.name} given twice`, `give it once (try "pgpitr ${command} --help")`);
    seen.add(t.name);
  }
}

export function parseRepoOptions(
  command: string,
  argv: string[],
  opts: { needStanza?: boolean; extra?: ExtraOptionSpec } = {},
  env: NodeJS.ProcessEnv = process.env,
): RepoOptions {
  let parsed;
  const repoFlags = repoFlagSpec(argv);
  try {
    parsed = parseArgs({ args: argv, options: { ...repoOptionSpec, ...repoFlags, ...opts.extra }, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    throw argsError(e, command, { ...repoOptionSpec, ...repoFlags, ...opts.extra });
  }
  refuseRepeated(parsed.tokens, { ...repoOptionSpec, ...repoFlags, ...opts.extra }, command);
  const v = parsed.values;
  if (v.config === '') throw usageError('--config is empty', 'give the configuration file\'s path, or leave out --config (PGPITR_CONFIG, else no file)');
  const configPath = v.config ?? env.PGPITR_CONFIG;
  const loaded = configPath ? loadConfig(absolutePath('configuration file', configPath)) : null;
  const config = loaded ? configForCommand(loaded, command) : null;
  const stanza = v.stanza ?? env.PGPITR_STANZA ?? '';
  const get = (key: string, flag: string | undefined) => flag ?? configValue(config, stanza || undefined, key);
  const help = v.help === true;
  const { repos, repoSelected, reachArgs, envOnlySecrets } = help
    ? { repos: [], repoSelected: undefined, reachArgs: [], envOnlySecrets: [] }
    : resolveRepoSelection({ values: v as Record<string, unknown>, flagNames: Object.keys(repoFlags), repoFlag: v.repo, configPath, config, stanza, env, pinConfig: command === 'restore', archiving: command === 'archive-push' || command === 'archive-get' });
  if (!help && opts.needStanza !== false && !stanza) throw usageError('no stanza given', 'use --stanza NAME or PGPITR_STANZA');
  const ownSectionSecrets = command === 'restore' && loaded && config ? secretsOnlyFor(loaded, config, stanza, repos, env) : [];
  const type = parseCompressType(get('compress-type', v['compress-type']));
  const level = parseCompressLevel(type, get('compress-level', v['compress-level']));
  const output = v.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw usageError(`invalid output format "${output}", must be "text" or "json"`);
  const timeoutText = get('archive-timeout', v['archive-timeout']) ?? '60';
  const timeout = Number(timeoutText);
  if (!Number.isFinite(timeout) || timeout <= 0) throw usageError(`invalid archive-timeout "${timeoutText}"`, 'give seconds, e.g. 60');
  const asyncGiven = v['no-archive-async'] ? 'n' : v['archive-async'] ? 'y' : configValue(config, stanza || undefined, 'archive-async');
  const archiveAsync = parseBool('archive-async', asyncGiven ?? 'n');
  const spoolPath = absolutePath('spool', get('spool-path', v['spool-path']) ?? DEFAULT_SPOOL_PATH);
  const processMaxGiven = get('process-max', v['process-max']);
  const processMaxText = processMaxGiven ?? '2';
  const processMax = Number(processMaxText);
  if (!Number.isInteger(processMax) || processMax < 1 || processMax > 64) throw usageError(`invalid process-max "${processMaxText}"`, 'use an integer from 1 to 64');
  const queueMaxText = get('archive-push-queue-max', v['archive-push-queue-max']);
  const queueMaxBytes = queueMaxText === undefined ? null : parseByteSize('archive-push-queue-max', queueMaxText);
  // Below one (default-size) segment every segment that waits would be dropped: "16" is 16 bytes, not 16MB.
  if (queueMaxBytes !== null && queueMaxBytes < 16 * 1024 * 1024 && command === 'archive-push') {
    throw usageError(`archive-push-queue-max "${queueMaxText}" is ${queueMaxBytes} bytes: below one WAL segment, every segment that waits would be dropped`, 'give at least 16MB, with its unit (a number alone counts bytes), e.g. 4GB; or leave it unset: nothing is ever dropped');
  }
  const positionalIndexes = new Set(parsed.tokens.filter((t) => t.kind === 'positional').map((t) => t.index));
  const connection = resolveConnectionSettings({ dbname: v.dbname, host: v.host, port: v.port, user: v.username }, env, configConnection(config, stanza || undefined));
  return {
    repos,
    repoSelected,
    reachArgs,
    envOnlySecrets,
    ownSectionSecrets,
    stanza,
    compression: type,
    level,
    output,
    archiveTimeoutMs: timeout * 1000,
    archiveAsync,
    archiveAsyncGiven: asyncGiven !== undefined,
    spoolPath,
    processMax,
    processMaxGiven: processMaxGiven !== undefined,
    queueMaxBytes,
    pusherPgWal: v.pusher,
    getQueueMaxBytes: parseByteSize('archive-get-queue-max', get('archive-get-queue-max', v['archive-get-queue-max']) ?? '128MB'),
    fetcher: v.fetcher === true,
    connection,
    positionals: parsed.positionals,
    configValue: (key: string) => configValue(config, stanza || undefined, key),
    extra: Object.fromEntries(Object.keys(opts.extra ?? {}).map((k) => [k, (v as Record<string, string | boolean | string[] | boolean[] | undefined>)[k]])),
    optionArgs: argv.filter((_, i) => !positionalIndexes.has(i)),
    help,
  };
}

/** The --repoN-KEY flags given in argv, as options for parseArgs (only those given: N goes to 256). */
export function repoFlagSpec(argv: string[]): Record<string, { type: 'string' }> {
  const spec: Record<string, { type: 'string' }> = {};
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--(repo\d+-[a-z0-9-]+)(=|$)/.exec(a);
    if (!m) continue;
    if (repoKey(m[1]!) === null) throw usageError(`unknown option "--${m[1]}"`, `repository settings are --repoN-KEY, KEY one of: type, path, s3-endpoint, s3-bucket, s3-region, s3-uri-style, storage-port, storage-host, storage-verify-tls, storage-ca-file, cipher-type, retention-full, retention-window`);
    spec[m[1]!] = { type: 'string' };
  }
  return spec;
}

export interface RepoSelection {
  repos: RepoSettings[];
  repoSelected: number | undefined;
  reachArgs: string[];
  envOnlySecrets: string[];
}

/** The repositories from the parsed flags, the environment and the configuration file, and how another process reaches them. */
export function resolveRepoSelection(input: {
  values: Record<string, unknown>;
  flagNames: string[];
  repoFlag: string | undefined;
  configPath: string | undefined;
  config: ConfigSections | null;
  stanza: string;
  env: NodeJS.ProcessEnv;
  /** Pass on what the configuration file gave as flags too (restore: restore_command must reach the repositories restore planned with). */
  pinConfig?: boolean;
  /**
   * A command the server runs or that feeds the archive (archive-push, archive-get, receive-wal):
   * repositories in one place are warned of, not refused (refused, archive_command would fail on
   * every segment of a set-up that worked, and pg_wal fill).
   */
  archiving?: boolean;
}): RepoSelection {
  const { values, config, stanza, env, configPath } = input;
  const selectedText = input.repoFlag !== undefined && /^\d+$/.test(input.repoFlag) ? input.repoFlag : undefined;
  const legacyFlag = selectedText === undefined ? input.repoFlag : undefined;
  const legacyPath = legacyFlag ?? env.PGPITR_REPO ?? configValue(config, stanza || undefined, 'repo');
  const flags = new Map<string, string>();
  for (const name of input.flagNames) {
    const value = values[name];
    if (typeof value === 'string') flags.set(name, value);
  }
  const configNames = config ? [...(config.get('global')?.keys() ?? []), ...((stanza && config.get(stanza)?.keys()) || [])] : [];
  const repos = resolveRepositories({ flags, env, config: (key) => configValue(config, stanza || undefined, key), configNames, ...(legacyPath === undefined ? {} : { legacyPath, legacyFromFlag: legacyFlag !== undefined }) });
  if (repos.length === 0) throw usageError('no repository given', 'use --repo PATH, PGPITR_REPO, or repo= (or repoN-path) in the configuration file');
  const overlap = repositoryOverlap(repos);
  if (overlap !== null && input.archiving !== true) throw overlap;
  if (overlap !== null) printLine(`warning: ${overlap.message}; ${overlap.hint}`);
  const repoSelected = selectedText === undefined ? undefined : Number(selectedText);
  if (repoSelected !== undefined && !repos.some((r) => r.index === repoSelected)) {
    throw usageError(`--repo ${repoSelected}: no repository ${repoSelected} is configured`, `configured: ${repos.map((r) => `repo${r.index}`).join(', ')}`);
  }
  const reachArgs: string[] = [];
  const envOnlySecrets: string[] = [];
  if (configPath) reachArgs.push('--config', absolutePath('configuration file', configPath));
  const legacyGiven = legacyFlag ?? env.PGPITR_REPO;
  if (legacyGiven !== undefined) {
    const path = absolutePath('repository', legacyGiven);
    reachArgs.push(...(repoSelected === undefined ? ['--repo', path] : [`--repo1-path=${path}`]));
  }
  for (const [name, value] of flags) reachArgs.push(`--${name}=${value}`);
  for (const r of repos) {
    for (const name of Object.keys(env)) {
      const m = new RegExp(`^PGPITR_REPO${r.index}_([A-Z0-9_]+)$`).exec(name);
      if (!m) continue;
      const key = m[1]!.toLowerCase().replace(/_/g, '-');
      if (repoKey(`repo${r.index}-${key}`) === null) {
        // Said and left out (as pgBackRest warns of an invalid option in its environment): copied
        // into restore_command, it made every archive-get refuse its options, and recovery never started.
        printLine(`warning: environment variable ${name} is not a setting of repository ${r.index} (KEY in PGPITR_REPO${r.index}_KEY is one of ${[...REPO_KEYS].map((k) => k.toUpperCase().replace(/-/g, '_')).join(', ')}): ignored`);
        continue;
      }
      if (flags.has(`repo${r.index}-${key}`) || envName(r.index, key) !== name) continue;
      // --repo PATH won over it (repo-settings.ts): passed on, archive-get would see the path twice and refuse.
      if (r.index === 1 && key === 'path' && legacyFlag !== undefined) continue;
      if (SECRET_REPO_KEYS.has(key)) envOnlySecrets.push(name);
      else reachArgs.push(`--repo${r.index}-${key}=${env[name]}`);
    }
  }
  // An S3 repository without a key of its own uses the SDK's default credentials: from this
  // environment, they are not the server's either.
  if (repos.some((r) => r.type === 's3' && r.s3?.credentials === undefined)) {
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) if (env[name] !== undefined) envOnlySecrets.push(name);
  }
  // What the configuration file gave this command (its [stanza:command] and [global:command]
  // sections, [stanza], [global]) is passed on too: the other process (archive-get, from
  // restore_command) reads its own command's sections, and the server's environment, which would
  // otherwise choose other repositories than the ones this command planned with. Secrets stay in the file.
  if (config && input.pinConfig === true) {
    for (const r of repos) {
      for (const key of REPO_KEYS) {
        const name = `repo${r.index}-${key}`;
        if (SECRET_REPO_KEYS.has(key) || flags.has(name) || env[envName(r.index, key)] !== undefined) continue;
        if (r.index === 1 && key === 'path' && legacyPath !== undefined) continue;
        const value = configValue(config, stanza || undefined, name);
        if (value !== undefined) reachArgs.push(`--${name}=${value}`);
      }
    }
    // repo= of the file (the legacy path), as --repo PATH would be passed on.
    if (legacyGiven === undefined && legacyPath !== undefined && repoSelected === undefined) reachArgs.push('--repo', absolutePath('repository', legacyPath));
  }
  if (repoSelected !== undefined) reachArgs.push('--repo', String(repoSelected));
  return { repos, repoSelected, reachArgs, envOnlySecrets };
}

/**
 * A path the repository commands are given must be absolute: archive_command and
 * restore_command run in the data directory, other commands wherever they are started, so a
 * relative path would name a different directory for each (WAL stored where nothing finds it).
 */
export function absolutePath(what: string, path: string): string {
  if (!isAbsolute(path)) {
    throw usageError(`${what} path "${path}" is relative`, `give an absolute path (such as ${resolve(path)}): archive_command and restore_command run in the data directory, so a relative path names another directory there than in a shell`);
  }
  return resolve(path);
}

function parseBool(key: string, text: string): boolean {
  const t = text.toLowerCase();
  if (['y', 'yes', 'on', 'true', '1'].includes(t)) return true;
  if (['n', 'no', 'off', 'false', '0'].includes(t)) return false;
  throw usageError(`invalid ${key} "${text}"`, 'use y or n');
}

/** compress-type as given (flag or file), zstd by default. */
export function parseCompressType(text: string | undefined): RepoOptions['compression'] {
  const type = text ?? 'zstd';
  if (!['none', 'gzip', 'lz4', 'zstd'].includes(type)) throw usageError(`invalid compress-type "${type}"`, 'use none, gzip, lz4 or zstd');
  return type as RepoOptions['compression'];
}

/** compress-level as given, within the algorithm's range; undefined: the algorithm's default. */
export function parseCompressLevel(type: RepoOptions['compression'], text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const level = Number(text);
  const range = type === 'none' ? null : levelRange(type as CompressionAlgorithm);
  if (!Number.isInteger(level) || (range && (level < range.min || level > range.max))) {
    throw usageError(`invalid compress-level "${text}" for ${type}`, range ? `use ${range.min} to ${range.max}` : undefined);
  }
  return level;
}

/**
 * The configuration file's pg-* settings for a stanza, as resolveConnectionSettings takes them: after
 * the flags and -d, before a service and the PG* environment variables (conninfo.ts).
 */
export function configConnection(config: ConfigSections | null, stanza: string | undefined): ConnectionFlags {
  return {
    dbname: configValue(config, stanza, 'pg-database'),
    host: configValue(config, stanza, 'pg-host'),
    port: configValue(config, stanza, 'pg-port'),
    user: configValue(config, stanza, 'pg-user'),
  };
}

/** "1GB", "512MB", "64MiB", "1048576": bytes (kB, MB, GB, TB count in 1024s, as PostgreSQL's settings). */
export function parseByteSize(key: string, text: string): number {
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(text.trim());
  if (!m) throw usageError(`invalid ${key} "${text}"`, 'give a size such as 4GB, 512MB or a number of bytes');
  const unit = (m[2] ?? 'B')[0]!.toUpperCase();
  const factor = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit as 'B']!;
  return Number(m[1]) * factor;
}

export const REPO_OPTIONS_HELP = `Repository options:
      --repo=PATH        repository directory (or PGPITR_REPO, or repo= in the config file): repository 1
      --repo=N           the repository N to use, of those configured with repoN-* settings
      --repoN-KEY=VALUE  a setting of repository N (repoN-type=posix|s3, repoN-path, repoN-s3-bucket,
                         ...: see the README); secrets only in the config file or PGPITR_REPON_* variables
      --stanza=NAME      the cluster's name in the repository (or PGPITR_STANZA)
      --config=FILE      configuration file (or PGPITR_CONFIG): INI with [global] and [STANZA] sections,
                         and [global:COMMAND] / [STANZA:COMMAND] for one command
  -o, --output=text|json
`;

/** The compression options, in the help of the commands that store files (the others accept and ignore them, as a config file's [global] gives them to every command). */
export const COMPRESS_OPTIONS_HELP = `Compression of what is stored:
      --compress-type=none|gzip|lz4|zstd   (default zstd)
      --compress-level=N compression level
`;

/** archive-push's part of the help: its asynchronous mode. */
export const ARCHIVE_PUSH_ASYNC_HELP = `Asynchronous archiving:
      --archive-async    store ahead, in the background, the WAL files PostgreSQL marks ready
      --spool-path=DIR   local directory for its state (default ${DEFAULT_SPOOL_PATH})
      --process-max=N    files stored at once (default 2)
      --archive-push-queue-max=SIZE  drop WAL (loudly) rather than let more than SIZE wait
      --archive-timeout=SECONDS      how long archive-push waits for the background pusher (default 60)
`;

/** archive-get's part of the help (and restore's, whose restore_command uses it): the prefetch. */
export const ARCHIVE_GET_ASYNC_HELP = `Asynchronous prefetch:
      --archive-async    keep the next segments recovery needs fetched, in the spool
      --spool-path=DIR   local directory for its state (default ${DEFAULT_SPOOL_PATH})
      --archive-get-queue-max=SIZE   how much WAL to keep ahead (default 128MB)
`;

/** The part of the help of commands that talk to the server. */
export const CONNECTION_OPTIONS_HELP = `Connection options:
  -d, --dbname=CONNSTR  -h, --host=HOST  -p, --port=PORT  -U, --username=NAME
`;
