// pg_basebackup's command line, same option letters, meanings, defaults and
// refusals, turned into BaseBackupOptions. Messages follow pg_basebackup's.

import { argsError } from '../args-error.js';
import { connectionOptionSpec } from '../connection-options.js';
import { parseArgs } from 'node:util';
import { expandLongAbbreviations } from '../long-abbreviations.js';
import { isAbsolute } from 'node:path';
import { usageError } from '../../common/errors.js';
import type { BaseBackupOptions, BackupTarget, TablespaceMapping } from '../../backup/options.js';
import { resolveConnectionSettings } from '../../protocol/conninfo.js';
import { parseCompressOption } from '../compress-option.js';
import { printLine } from '../output.js';

export const basebackupOptionSpec = {
  ...connectionOptionSpec,
  pgdata: { type: 'string', short: 'D' },
  format: { type: 'string', short: 'F' },
  'max-rate': { type: 'string', short: 'r' },
  'write-recovery-conf': { type: 'boolean', short: 'R' },
  target: { type: 'string', short: 't' },
  'tablespace-mapping': { type: 'string', short: 'T', multiple: true },
  waldir: { type: 'string' },
  'wal-method': { type: 'string', short: 'X' },
  gzip: { type: 'boolean', short: 'z' },
  compress: { type: 'string', short: 'Z' },
  checkpoint: { type: 'string', short: 'c' },
  'create-slot': { type: 'boolean', short: 'C' },
  label: { type: 'string', short: 'l' },
  'no-clean': { type: 'boolean', short: 'n' },
  'no-sync': { type: 'boolean', short: 'N' },
  // pg_basebackup 17's: how the output is made durable. pgpitr syncs each file it writes and their
  // directories, which makes the backup as durable either way.
  'sync-method': { type: 'string' },
  progress: { type: 'boolean', short: 'P' },
  'progress-format': { type: 'string' },
  slot: { type: 'string', short: 'S' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  version: { type: 'boolean', short: 'V' },
  'manifest-checksums': { type: 'string' },
  'manifest-force-encode': { type: 'boolean' },
  'no-estimate-size': { type: 'boolean' },
  'no-manifest': { type: 'boolean' },
  'no-slot': { type: 'boolean' },
  'no-verify-checksums': { type: 'boolean' },
  jobs: { type: 'string', short: 'j' },
  resume: { type: 'boolean' },
  'read-method': { type: 'string' },
  help: { type: 'boolean', short: '?' },
  'status-interval': { type: 'string', short: 's' },
  'no-password': { type: 'boolean', short: 'w' },
  password: { type: 'boolean', short: 'W' },
} as const;

export interface ParsedBasebackup {
  options: BaseBackupOptions;
  verbose: number;
  progressFormat: 'text' | 'json';
  help: boolean;
  version: boolean;
  promptPassword: boolean;
  noPassword: boolean;
}

/** What pgpitr basebackup adds to pg_basebackup's options (long-abbreviations.ts). */
const PGPITR_OWN = ['progress-format', 'jobs', 'resume', 'read-method'];

/** --incremental, or a prefix of it as getopt takes one (--incr). */
function isIncremental(arg: string): boolean {
  const name = arg.startsWith('--') ? arg.slice(2).split('=')[0]! : '';
  return name.length >= 3 && 'incremental'.startsWith(name);
}

export function parseBasebackupArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedBasebackup {
  let values: Record<string, unknown>;
  // pg_basebackup 17's incremental backup (UPLOAD_MANIFEST, for pg_combinebackup) is not made here.
  if (argv.some((a) => a === '-i' || isIncremental(a))) {
    throw usageError('-i/--incremental (pg_basebackup 17\'s incremental backup, combined with pg_combinebackup) is not supported by pgpitr basebackup', 'take incremental backups into a repository: pgpitr backup --type incr (restore puts them together); or use pg_basebackup for that one');
  }
  try {
    const parsed = parseArgs({ args: expandLongAbbreviations(argv, basebackupOptionSpec, 'basebackup', PGPITR_OWN), options: basebackupOptionSpec, allowPositionals: true, strict: true });
    values = parsed.values as Record<string, unknown>;
    if (parsed.positionals.length > 0) throw usageError(`too many command-line arguments (first is "${parsed.positionals[0]}")`, 'try "pgpitr basebackup --help" for more information');
  } catch (e) {
    throw argsError(e, 'basebackup', basebackupOptionSpec);
  }
  const str = (k: string) => values[k] as string | undefined;
  const bool = (k: string) => values[k] === true;
  const help = bool('help');
  const version = bool('version');
  const verbose = (values.verbose as boolean[] | undefined)?.length ?? 0;

  const progressFormat = str('progress-format') ?? 'text';
  if (progressFormat !== 'text' && progressFormat !== 'json') throw usageError(`invalid progress format "${progressFormat}", must be "text" or "json"`);
  const progress = bool('progress') || str('progress-format') !== undefined;

  if (help || version) {
    return { options: undefined as unknown as BaseBackupOptions, verbose, progressFormat, help, version, promptPassword: false, noPassword: false };
  }

  // Output format and target.
  const formatText = str('format');
  let format: 'plain' | 'tar' = 'plain';
  if (formatText !== undefined) {
    if (formatText === 'p' || formatText === 'plain') format = 'plain';
    else if (formatText === 't' || formatText === 'tar') format = 'tar';
    else throw usageError(`invalid output format "${formatText}", must be "plain" or "tar"`);
  }
  const pgdata = str('pgdata');
  // -t client is the default, said: as if not given (pg_basebackup).
  const targetText = str('target') === 'client' ? undefined : str('target');
  let target: BackupTarget;
  if (targetText !== undefined) {
    if (pgdata !== undefined) throw usageError('cannot specify both output directory and backup target');
    if (formatText !== undefined) throw usageError('cannot specify both format and backup target');
    const colon = targetText.indexOf(':');
    const kind = colon < 0 ? targetText : targetText.slice(0, colon);
    const detail = colon < 0 ? undefined : targetText.slice(colon + 1);
    if (kind === 'client') {
      throw usageError('target "client" does not accept a target detail');
    } else if (kind === 'server') {
      if (!detail) throw usageError('target "server" requires a target detail', 'use -t server:/path/on/the/server');
      target = { kind: 'server', path: detail };
    } else if (kind === 'blackhole') {
      if (detail) throw usageError('target "blackhole" does not accept a target detail');
      target = { kind: 'blackhole' };
    } else throw usageError(`unrecognized target "${kind}"`, 'use server:PATH or blackhole');
    format = 'tar';
  } else if (pgdata === undefined) {
    throw usageError('no target directory specified', 'try "pgpitr basebackup --help" for more information');
  } else if (pgdata === '-') {
    if (format === 'plain') throw usageError('cannot write to stdout in plain format', 'use -F tar with -D -');
    target = { kind: 'stdout' };
  } else target = { kind: 'directory', path: pgdata };

  // WAL method.
  const walText = str('wal-method');
  let walMethod: BaseBackupOptions['walMethod'] = 'stream';
  if (walText !== undefined) {
    if (walText === 'n' || walText === 'none') walMethod = 'none';
    else if (walText === 'f' || walText === 'fetch') walMethod = 'fetch';
    else if (walText === 's' || walText === 'stream') walMethod = 'stream';
    else throw usageError(`invalid wal-method option "${walText}", must be "fetch", "stream", or "none"`);
  }
  if (walMethod === 'stream' && target.kind === 'stdout') {
    throw usageError('cannot stream write-ahead logs in tar mode to stdout', 'use -X none or -X fetch to disable log streaming');
  }
  if (walMethod === 'stream' && (target.kind === 'server' || target.kind === 'blackhole')) {
    throw usageError('WAL cannot be streamed when a backup target is specified', 'use -X none or -X fetch');
  }

  // Compression.
  const where = target.kind === 'server' || target.kind === 'blackhole' ? 'server' : 'client';
  let compression = bool('gzip') ? parseCompressOption('gzip', false, where) : null;
  const z = str('compress');
  if (z !== undefined) {
    compression = parseCompressOption(z, bool('gzip'), where);
  }
  if (compression?.location === 'client' && format === 'plain') {
    throw usageError('only tar mode backups can be compressed', 'use -F tar, or server-side compression (-Z server-METHOD) which is decompressed while extracting');
  }
  if (compression?.location === 'client' && (target.kind === 'server' || target.kind === 'blackhole')) {
    throw usageError('client-side compression is not possible when a backup target is specified');
  }

  // Checkpoint, rate, slots.
  const checkpoint = (str('checkpoint') ?? 'spread').toLowerCase(); // as pg_basebackup: -c FAST is -c fast
  if (checkpoint !== 'fast' && checkpoint !== 'spread') throw usageError(`invalid checkpoint argument "${checkpoint}", must be "fast" or "spread"`);
  const maxRateKb = str('max-rate') === undefined ? undefined : parseMaxRate(str('max-rate')!);
  const slot = str('slot');
  const createSlot = bool('create-slot');
  const noSlot = bool('no-slot');
  if (slot !== undefined && walMethod !== 'stream') throw usageError('replication slots can only be used with WAL streaming');
  if (noSlot) {
    if (slot !== undefined) throw usageError('--no-slot cannot be used with slot name');
    // Without streaming there is no slot to leave out: accepted, as pg_basebackup accepts it.
  }
  if (createSlot) {
    if (slot === undefined) throw usageError('--create-slot needs a slot to be specified using --slot');
    if (noSlot) throw usageError('--create-slot and --no-slot are incompatible options');
  }

  // Layout options.
  let tablespaceMappings = ((values['tablespace-mapping'] as string[] | undefined) ?? []).map(parseTablespaceMapping);
  // A tar file holds a tablespace by OID, wherever it is: the mappings mean nothing there. Accepted,
  // as pg_basebackup accepts them (a script shared between formats), and said.
  if (tablespaceMappings.length > 0 && format !== 'plain') {
    printLine('warning: tablespace mappings (-T) apply to the plain format only: ignored (each tablespace is written as <oid>.tar)');
    tablespaceMappings = [];
  }
  const walDir = str('waldir');
  if (walDir !== undefined) {
    if (format !== 'plain') throw usageError('WAL directory location can only be specified in plain mode');
    if (!isAbsolute(walDir)) throw usageError('WAL directory location must be an absolute path');
  }
  const writeRecoveryConf = bool('write-recovery-conf');
  if (writeRecoveryConf && (target.kind === 'server' || target.kind === 'blackhole')) {
    throw usageError('recovery configuration cannot be written when a backup target is used');
  }

  // Manifest and size estimate.
  const noManifest = bool('no-manifest');
  const manifestChecksums = str('manifest-checksums');
  if (noManifest && manifestChecksums !== undefined) throw usageError('--no-manifest and --manifest-checksums are incompatible options');
  if (noManifest && bool('manifest-force-encode')) throw usageError('--no-manifest and --manifest-force-encode are incompatible options');
  if (manifestChecksums !== undefined && !/^(none|crc32c|sha224|sha256|sha384|sha512)$/i.test(manifestChecksums)) {
    throw usageError(`invalid manifest checksum algorithm "${manifestChecksums}"`, 'use NONE, CRC32C, SHA224, SHA256, SHA384 or SHA512');
  }
  const noEstimate = bool('no-estimate-size');
  if (noEstimate && bool('progress')) throw usageError('--progress and --no-estimate-size are incompatible options');

  const syncMethod = str('sync-method');
  if (syncMethod !== undefined && syncMethod !== 'fsync' && syncMethod !== 'syncfs') throw usageError(`unrecognized sync method: ${syncMethod}`, 'use fsync or syncfs (pgpitr syncs each file it writes either way)');
  if (syncMethod !== undefined && bool('no-sync')) throw usageError('--sync-method cannot be used with --no-sync');

  const statusText = str('status-interval');
  let statusIntervalMs = 10_000;
  if (statusText !== undefined) {
    const n = Number(statusText);
    if (!Number.isInteger(n) || n < 0 || n > 2147483) throw usageError(`invalid status interval "${statusText}"`, 'give a number of seconds from 0 to 2147483');
    statusIntervalMs = n * 1000;
  }

  const parallel = parseParallel(str('jobs'), str('read-method'));
  // With -j the WAL of -X fetch is streamed beside the files (wal-session.ts): stdout holds one archive only.
  if (parallel && walMethod === 'fetch' && target.kind === 'stdout') {
    throw usageError('cannot fetch write-ahead logs with -j in tar mode to stdout', 'use -X none with -D - (the WAL then comes from the archive), or write into a directory');
  }
  if (parallel && target.kind === 'server') throw usageError('-j cannot be used with --target=server', 'a server-side target is written by the server; leave out -j');
  if (parallel && target.kind === 'blackhole') throw usageError('-j cannot be used with --target=blackhole');
  if (parallel && compression?.location === 'server') throw usageError('-j cannot be used with server-side compression', 'the workers read the files themselves: compress on the client (-Z client-METHOD)');

  const resume = bool('resume');
  if (resume && !(parallel && format === 'plain' && target.kind === 'directory')) {
    throw usageError('--resume needs -j and the plain format into a directory', 'resume the interrupted backup with the same -D, -Fp, -j and -T options');
  }

  const promptPassword = bool('password');
  const noPassword = bool('no-password');
  const connection = resolveConnectionSettings({ dbname: str('dbname'), host: str('host'), port: str('port'), user: str('username') }, env);

  const options: BaseBackupOptions = {
    connection,
    target,
    format,
    walMethod,
    compression,
    fastCheckpoint: checkpoint === 'fast',
    label: str('label') ?? 'pgpitr base backup',
    progress,
    estimateSize: !noEstimate,
    maxRateKb,
    slot,
    createSlot,
    noSlot,
    tablespaceMappings,
    walDir,
    writeRecoveryConf,
    noClean: bool('no-clean'),
    noSync: bool('no-sync'),
    manifest: !noManifest,
    manifestChecksums,
    manifestForceEncode: bool('manifest-force-encode'),
    verifyChecksums: !bool('no-verify-checksums'),
    statusIntervalMs,
    parallel,
    resume,
  };
  return { options, verbose, progressFormat, help, version, promptPassword, noPassword };
}

/** Most workers -j accepts: each is a thread with its buffers; more than this gains nothing on any host we know. */
export const MAX_JOBS = 64;

/** -j N and --read-method: undefined without -j (one BASE_BACKUP stream). */
export function parseParallel(jobs: string | undefined, method: string | undefined): BaseBackupOptions['parallel'] {
  if (jobs === undefined) {
    if (method !== undefined) throw usageError('--read-method needs -j', 'give -j N to read the files with N workers');
    return undefined;
  }
  const n = Number(jobs);
  if (!/^\d+$/.test(jobs) || n < 1 || n > MAX_JOBS) throw usageError(`invalid number of parallel jobs "${jobs}"`, `give a number from 1 to ${MAX_JOBS}`);
  const readMethod = method ?? 'auto';
  if (readMethod !== 'auto' && readMethod !== 'direct' && readMethod !== 'sql') throw usageError(`invalid read method "${readMethod}"`, 'use auto, direct or sql');
  return { jobs: n, readMethod };
}

/** -r: kB/s by default, "k" or "M" suffix; 32 kB/s to 1024 MB/s (pg_basebackup's range). */
export function parseMaxRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kM]?)\s*$/.exec(text);
  if (!m) throw usageError(`invalid transfer rate "${text}"`, 'give kB/s, or a number with a k or M suffix');
  let kb = Number(m[1]);
  if (m[2] === 'M') kb *= 1024;
  kb = Math.floor(kb);
  if (kb === 0) throw usageError('transfer rate must be greater than zero');
  if (kb < 32 || kb > 1048576) throw usageError(`transfer rate "${text}" is out of range`, 'use a rate from 32 kB/s to 1024 MB/s');
  return kb;
}

/** -T OLDDIR=NEWDIR; "\=" escapes an equals sign; both must be absolute. */
export function parseTablespaceMapping(text: string): TablespaceMapping {
  let oldDir = '';
  let newDir = '';
  let seenEq = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '=') {
      (seenEq ? (newDir += '=') : (oldDir += '='));
      i++;
    } else if (c === '=') {
      if (seenEq) throw usageError(`multiple "=" signs in tablespace mapping`);
      seenEq = true;
    } else if (seenEq) newDir += c;
    else oldDir += c;
  }
  if (!seenEq || oldDir === '' || newDir === '') throw usageError(`invalid tablespace mapping format "${text}", must be "OLDDIR=NEWDIR"`);
  if (!isAbsolute(oldDir)) throw usageError(`old directory is not an absolute path in tablespace mapping: ${oldDir}`);
  if (!isAbsolute(newDir)) throw usageError(`new directory is not an absolute path in tablespace mapping: ${newDir}`);
  return { oldDir, newDir };
}
