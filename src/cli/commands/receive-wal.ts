// `pgpitr receive-wal`: pg_receivewal's options with the same meanings, plus
// a repository mode (--repo/--stanza) that stores completed segments straight
// into the stanza's archive, so PITR works with no archive_command at all.

import { argsError } from '../args-error.js';
import { connectionOptionSpec } from '../connection-options.js';
import { parseArgs } from 'node:util';
import { expandLongAbbreviations } from '../long-abbreviations.js';
import { join, resolve } from 'node:path';
import { resolveConnectionSettings } from '../../protocol/conninfo.js';
import { Session, quoteIdent } from '../../protocol/session.js';
import { parseLsn } from '../../postgres/lsn.js';
import { receiveWal, slotMissing } from '../../wal/receiver.js';
import { openChosenRepository } from '../../repo/open-repository.js';
import { pickRepository } from '../../repo/repo-settings.js';
import { RECEIVER_DIR, stanzaPath } from '../../repo/layout.js';
import { DEFAULT_SPOOL_PATH } from '../../archiving/spool.js';
import { receiveWalArchive } from '../../commands/receive-wal-archive.js';
import type { ReceiveWalArchive } from '../../commands/receive-wal-archive.js';
import { parseSizeSetting } from '../../postgres/settings.js';
import { moveReceivedFiles } from '../../wal/receiver-dir-move.js';
import { configForCommand, loadConfig, configValue } from '../../common/config-file.js';
import { absolutePath, configConnection, parseCompressLevel, parseCompressType, refuseRepeated, repoFlagSpec, resolveRepoSelection } from '../repo-options.js';
import { usageError, ServerError } from '../../common/errors.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { PGPITR_VERSION } from '../../common/version.js';
import { parseReceiveWalCompress } from '../receive-wal-compress.js';
import { promptPassword } from '../prompt.js';

const HELP = `pgpitr receive-wal streams write-ahead logs from a PostgreSQL server (pg_receivewal's job).

Usage:
  pgpitr receive-wal -D DIR [OPTION]...
  pgpitr receive-wal --repo PATH --stanza NAME [-D SPOOLDIR] [OPTION]...

Options:
  -D, --directory=DIR    receive WAL files into this directory (repository mode: spool for the .partial segment)
  -E, --endpos=LSN       exit after receiving the specified LSN
      --if-not-exists    do not error if slot already exists when creating a slot
  -n, --no-loop          do not loop on connection lost
      --no-sync          do not wait for changes to be written safely to disk
  -s, --status-interval=SECS
                         time between status packets sent to server (default: 10)
  -S, --slot=SLOTNAME    replication slot to use
      --synchronous      flush write-ahead log immediately after writing
  -v, --verbose          output verbose messages
  -V, --version          output version information, then exit
  -Z, --compress=METHOD[:DETAIL]
                         compress segments as written: none, gzip or lz4, with an
                         optional level (N or level=N); a bare N is gzip at level N
                         (directory mode; files end in .gz / .lz4 as pg_receivewal's)
  -?, --help             show this help, then exit
      --create-slot      create a new replication slot (for the slot's name see --slot), then exit
      --drop-slot        drop the replication slot (for the slot's name see --slot), then exit
      --repo=PATH --stanza=NAME --config=FILE [--compress-type=none|gzip|lz4|zstd]
      [--compress-level=N]
                         (pgpitr) store completed segments in the stanza's archive
                         (without -D, PGPITR_STANZA and the configuration file's
                         repositories are enough; its pg-* settings apply too);
                         --repoN-KEY=VALUE and --repo N as for the other commands,
                         --spool-path=DIR where the segment being received is kept
                         for object storage and encrypted repositories
                         (default /var/spool/pgpitr)
Connection options: -d CONNSTR, -h HOST, -p PORT, -U NAME, -w, -W
`;

const spec = {
  ...connectionOptionSpec,
  directory: { type: 'string', short: 'D' },
  endpos: { type: 'string', short: 'E' },
  'if-not-exists': { type: 'boolean' },
  'no-loop': { type: 'boolean', short: 'n' },
  'no-sync': { type: 'boolean' },
  'status-interval': { type: 'string', short: 's' },
  slot: { type: 'string', short: 'S' },
  synchronous: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  'create-slot': { type: 'boolean' },
  'drop-slot': { type: 'boolean' },
  compress: { type: 'string', short: 'Z' },
  repo: { type: 'string' },
  stanza: { type: 'string' },
  config: { type: 'string' },
  'compress-type': { type: 'string' },
  'compress-level': { type: 'string' },
  'spool-path': { type: 'string' },
  'no-password': { type: 'boolean', short: 'w' },
  password: { type: 'boolean', short: 'W' },
  help: { type: 'boolean', short: '?' },
  version: { type: 'boolean', short: 'V' },
} as const;

export async function receiveWalCommand(argv: string[]): Promise<number> {
  let v;
  try {
    argv = expandLongAbbreviations(argv, spec, 'receive-wal', ['repo', 'stanza', 'config', 'compress-type', 'compress-level', 'spool-path']);
    const parsed = parseArgs({ args: argv, options: { ...spec, ...repoFlagSpec(argv) }, allowPositionals: false, strict: true, tokens: true });
    v = parsed.values;
    // pg_receivewal's own options keep the last given, as getopt; pgpitr's repository options are refused twice (as by the other commands).
    const { repo, stanza, config, 'compress-type': ct, 'compress-level': cl, 'spool-path': sp } = spec;
    refuseRepeated(parsed.tokens, { repo, stanza, config, 'compress-type': ct, 'compress-level': cl, 'spool-path': sp, ...repoFlagSpec(argv) }, 'receive-wal');
  } catch (e) {
    throw argsError(e, 'receive-wal', { ...spec, ...repoFlagSpec(argv) });
  }
  if (v.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  if (v.version) {
    process.stdout.write(`pgpitr receive-wal (pgpitr) ${PGPITR_VERSION}\n`);
    return ExitCode.Ok;
  }
  const verbose = (v.verbose?.length ?? 0) > 0;
  const log = (m: string) => {
    if (verbose || m.startsWith('warning: ')) printLine(m);
  };
  const stanzaName = v.stanza ?? (process.env.PGPITR_STANZA || undefined);
  // Repository mode: asked for on the command line, or, without -D, a stanza from the environment
  // (PGPITR_STANZA, with the repositories of the configuration file), as the other commands take it.
  const repoMode = v.repo !== undefined || v.stanza !== undefined || Object.keys(repoFlagSpec(argv)).length > 0 || (v.directory === undefined && stanzaName !== undefined);
  // The configuration file is pgpitr's repository settings: pg_receivewal's own mode (-D) neither
  // reads nor needs it (a PGPITR_CONFIG in a service's environment changes nothing there).
  const configPath = repoMode ? v.config ?? process.env.PGPITR_CONFIG : undefined;
  const config = configPath ? configForCommand(loadConfig(absolutePath('configuration file', configPath)), 'receive-wal') : null;
  const connection = resolveConnectionSettings({ dbname: v.dbname, host: v.host, port: v.port, user: v.username }, process.env, configConnection(config, stanzaName));
  // As pg_receivewal connects: synchronous_standby_names and monitoring written for it name it so.
  connection.fallback_application_name ??= 'pg_receivewal';

  if (v['create-slot'] && v['drop-slot']) throw usageError('cannot use --create-slot together with --drop-slot');
  if ((v['create-slot'] || v['drop-slot']) && !v.slot) throw usageError('--create-slot and --drop-slot need a slot to be specified using --slot');
  // --if-not-exists without --create-slot: accepted and ignored, as pg_receivewal does.
  if (v.synchronous && v['no-sync']) throw usageError('--synchronous and --no-sync are incompatible options');
  const compression = v.compress === undefined ? null : parseReceiveWalCompress(v.compress);
  if (!repoMode && v['compress-level'] !== undefined) throw usageError('--compress-level applies in repository mode', 'in directory mode (-D), give the level with -Z METHOD:LEVEL');
  if (!repoMode && v['compress-type'] !== undefined) throw usageError('--compress-type applies in repository mode', 'in directory mode (-D), compress with -Z METHOD[:LEVEL]');
  // The spool's files are stored once whole: unsynced, an operating system crash could leave zeros
  // in one that then reads whole, and the archive would keep it (its name taken for good).
  if (repoMode && v['no-sync']) throw usageError('--no-sync cannot be used in repository mode', 'segments go into the repository from the spool once whole and synced; leave out --no-sync');
  if (compression && repoMode) {
    throw usageError('-Z/--compress does not apply in repository mode', 'segments are compressed when stored in the repository: use --compress-type (zstd by default) and leave out -Z');
  }
  // -W: asked before connecting, as pg_receivewal (-w: never asked; the server's refusal is the answer).
  if (v.password && !v['no-password']) connection.password = await promptPassword();
  if (v['drop-slot']) return slotCommand(connection, v.slot!, false, false, log, undefined);

  let dir = v.directory;
  let archive;
  if (repoMode) {
    if (!stanzaName) throw usageError('repository mode needs both --repo and --stanza');
    const { repos, repoSelected } = resolveRepoSelection({ values: v as Record<string, unknown>, flagNames: Object.keys(repoFlagSpec(argv)), repoFlag: v.repo, configPath, config, stanza: stanzaName, env: process.env, archiving: true });
    // One stream, one repository: WAL received for several would stop for all while one is down
    // (archive-push's queue is what keeps the others going). One receive-wal per repository; said
    // loudly rather than refused (a receiver running under a service manager would restart in a
    // loop, and with a slot pg_wal would fill on the server).
    if (repos.length > 1 && repoSelected === undefined) {
      printLine(`warning: receive-wal stores into repo${repos[0]!.index} only, and ${repos.length} repositories are configured (${repos.map((r) => `repo${r.index}`).join(', ')}): the others get no WAL from it; give --repo N, and run one receive-wal (with its own slot, -S) per repository that should receive the WAL`);
    }
    const chosen = pickRepository(repos, repoSelected);
    const storeCompression = parseCompressType(v['compress-type'] ?? configValue(config, stanzaName, 'compress-type'));
    const level = parseCompressLevel(storeCompression, v['compress-level'] ?? configValue(config, stanzaName, 'compress-level'));
    const repository = await openChosenRepository(repos, repoSelected);
    archive = await receiveWalArchive(repository, stanzaName, { compression: storeCompression, level }, log);
    // The segment being received is a local file, written as it arrives (not through the cipher):
    // in an unencrypted posix repository, next to the stanza's archive (archive-get hands it over
    // from there); on object storage or in an encrypted repository, in the local spool, so that
    // the repository holds no plaintext WAL.
    const spool = absolutePath('spool', v['spool-path'] ?? configValue(config, stanzaName, 'spool-path') ?? DEFAULT_SPOOL_PATH);
    const inRepository = chosen.type === 'posix' ? join(chosen.path, stanzaPath(stanzaName), RECEIVER_DIR) : null;
    const inSpool = join(spool, stanzaName, chosen.index === 1 ? 'receive-wal' : `receive-wal-repo${chosen.index}`);
    if (dir === undefined) {
      dir = inRepository !== null && !repository.encryption ? inRepository : inSpool;
      // Before 2026-12-06 an encrypted repository's were kept in it: what an older run left is taken along.
      if (inRepository !== null && repository.encryption) await moveReceivedFiles(inRepository, inSpool, (line) => printLine(line));
    }
  }
  // In repository mode, on the stanza's cluster only: a slot elsewhere would hold WAL nothing reads.
  if (v['create-slot']) return slotCommand(connection, v.slot!, true, v['if-not-exists'] === true, log, archive);
  if (!dir) throw usageError('no target directory specified', 'use -D DIR, or --repo and --stanza');
  let endPosition: bigint | undefined;
  if (v.endpos !== undefined) {
    try {
      endPosition = parseLsn(v.endpos);
    } catch {
      throw usageError(`could not parse end position "${v.endpos}"`);
    }
  }
  const statusText = v['status-interval'] ?? '10';
  const status = Number(statusText);
  // pg_receivewal's bound (INT_MAX ms); beyond it Node's timers would fire every millisecond.
  if (!Number.isInteger(status) || status < 0 || status > 2147483) throw usageError(`invalid status interval "${statusText}"`, 'give seconds, 0 to 2147483');

  const ac = new AbortController();
  const stop = () => ac.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // In repository mode: the stanza deleted (stanza-delete) ends the stream within a second.
  let gone: Error | null = null;
  const unwatch = archive?.watch((e) => {
    gone = e;
    ac.abort();
  });
  try {
    await receiveWal({
      connection,
      dir: resolve(dir),
      slot: v.slot,
      endPosition,
      noLoop: v['no-loop'] === true,
      sync: v['no-sync'] !== true,
      synchronous: v.synchronous === true,
      compression,
      statusIntervalMs: status * 1000,
      reconnectDelayMs: Number(process.env.PGPITR_RECONNECT_DELAY_MS ?? 5000),
      archive,
      log,
      signal: ac.signal,
    });
  } catch (e) {
    // Stopped because the stanza went: what failed while stopping (its files removed) is not the news.
    if (gone !== null) throw Object.assign(gone, { cause: e });
    throw e;
  } finally {
    unwatch?.();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (gone !== null) throw gone;
  if (ac.signal.aborted) log('received interrupt signal, exiting');
  return ExitCode.Ok;
}

async function slotCommand(connection: ReturnType<typeof resolveConnectionSettings>, slot: string, create: boolean, ifNotExists: boolean, log: (m: string) => void, archive: Pick<ReceiveWalArchive, 'checkSystem'> | undefined): Promise<number> {
  const s = await Session.open(connection, 'physical', 'replication connection');
  try {
    if (create && archive) {
      const system = (await s.query('IDENTIFY_SYSTEM'))[0]!.rows[0]![0] ?? '';
      const segment = parseSizeSetting((await s.query('SHOW wal_segment_size'))[0]!.rows[0]![0] ?? '16MB');
      await archive.checkSystem({ systemIdentifier: system, major: Math.floor(s.serverVersionNum / 10000), walSegmentSize: segment });
    }
    if (create) {
      try {
        await s.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} PHYSICAL RESERVE_WAL`);
        log(`created replication slot "${slot}"`);
      } catch (e) {
        // 42710 duplicate_object: whatever language the server's messages are in.
        if (!(ifNotExists && e instanceof ServerError && e.sqlState === '42710')) throw e;
        log(`replication slot "${slot}" already exists`);
      }
    } else {
      await s.query(`DROP_REPLICATION_SLOT ${quoteIdent(slot)}`).catch((e: unknown) => {
        throw slotMissing(e, slot, true);
      });
      log(`dropped replication slot "${slot}"`);
    }
  } finally {
    s.close();
  }
  return ExitCode.Ok;
}
