// `pgpitr restore -D PATH`: a backup of the stanza into a data directory, set
// to recover to a target (commands/restore.ts, then restore/engine.ts). The
// restore_command it writes calls pgpitr archive-get, through the asynchronous
// prefetch unless told not to; as root, the prefetch spool is given to the
// data directory's owner. This file parses and prints.

import { isAbsolute } from 'node:path';
import { shellWord } from '../../common/shell-quote.js';
import { parseRepoOptions, REPO_OPTIONS_HELP, ARCHIVE_GET_ASYNC_HELP } from '../repo-options.js';
import { usageError } from '../../common/errors.js';
import { openRepository } from '../../repo/open-repository.js';
import { readStanza } from '../../repo/stanza.js';
import { describeRepository, pickRepository } from '../../repo/repo-settings.js';
import type { RepositoryRestoreRequest } from '../../commands/restore.js';
import { restoreFromRepository } from '../../commands/restore.js';
import { chooseRepository, requestForOthers } from './restore-repositories.js';
import { parseTargetOptions } from '../../restore/restore-target.js';
import { parseTablespaceMapping } from '../../restore/restore-target-dir.js';
import type { TablespaceMapping } from '../../restore/restore-target-dir.js';
import { recoveryOptions } from '../../restore/recovery-options.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { formatLsn } from '../../postgres/lsn.js';

const HELP = `pgpitr restore restores a backup of the stanza and sets it to recover to a target.

Usage:
  pgpitr restore --repo PATH --stanza NAME -D DATADIR [OPTION]...

Where:
  -D, --pg-data=DIR      the data directory: empty (or absent), or with --delta a stopped cluster
      --delta            rewrite only the files that differ, remove what the backup does not hold
      --set=ID           the backup to restore (default: the newest that can reach the target;
                         for --target-name, found by reading the archived WAL for the point)
      --tablespace-map=NAME=DIR  restore a tablespace elsewhere, by name or oid (repeatable)
      --tablespace-map-all=DIR           every tablespace under DIR/<oid>
      --waldir=DIR       pg_wal as a link to DIR (WAL on its own disk): empty, or with --delta the
                         directory pg_wal already links to (its old WAL files are removed)
      --db-include=NAME  restore only this database (repeatable; template0, template1 and postgres
                         always are); the others' files are written as zeros: drop them once up
      --db-exclude=NAME  leave this database out (repeatable), as --db-include leaves out the others
Recovery target (at most one; default: replay the whole archive):
      --target-time=TIMESTAMPTZ  --target-xid=XID  --target-lsn=LSN  --target-name=RESTORE_POINT
      --target-immediate         stop as soon as the backup is consistent
      --target-exclusive         stop just before the target
      --target-timeline=latest|current|N   (default latest)
      --target-action=pause|promote|shutdown   (default pause)
      --standby          start as a standby (standby.signal) instead of recovering once
      --accept-archive-gap   recover to the end of the archive although it has a gap: recovery
                         ends at the gap (without it, restore refuses, and restore_command stops
                         recovery at a gap that appears later instead of ending it there)
Settings for the restored server (in postgresql.auto.conf, with restore's own):
      --recovery-option=KEY=VALUE   add a setting (repeatable): primary_conninfo for a standby
                         that streams from its primary, recovery_min_apply_delay, restore_command, ...
      --archive-mode=off|preserve   off: the restored cluster does not archive (a copy made for
                         inspection must not archive into the production stanza); default preserve
Other:
      --process-max=N    files written at once (default: the cores)
      --no-archive-async restore_command without the asynchronous prefetch
      --dry-run          print the plan (backup, WAL, bytes) and write nothing
  -P, --progress         show progress
${REPO_OPTIONS_HELP}${ARCHIVE_GET_ASYNC_HELP}`;

const RESTORE_OPTIONS = {
  'pg-data': { type: 'string', short: 'D' },
  delta: { type: 'boolean' },
  set: { type: 'string' },
  'tablespace-map': { type: 'string', multiple: true },
  'tablespace-map-all': { type: 'string' },
  waldir: { type: 'string' },
  'db-include': { type: 'string', multiple: true },
  'db-exclude': { type: 'string', multiple: true },
  'target-time': { type: 'string' },
  'target-xid': { type: 'string' },
  'target-lsn': { type: 'string' },
  'target-name': { type: 'string' },
  'target-immediate': { type: 'boolean' },
  'target-exclusive': { type: 'boolean' },
  'target-timeline': { type: 'string' },
  'target-action': { type: 'string' },
  standby: { type: 'boolean' },
  'accept-archive-gap': { type: 'boolean' },
  'recovery-option': { type: 'string', multiple: true },
  'archive-mode': { type: 'string' },
  'dry-run': { type: 'boolean' },
  progress: { type: 'boolean', short: 'P' },
} as const;

export async function restoreCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('restore', argv, { extra: RESTORE_OPTIONS });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const x = o.extra as Record<string, string | boolean | string[] | undefined>;
  const pgData = x['pg-data'] as string | undefined;
  if (!pgData) throw usageError('no data directory given', 'give -D/--pg-data DIR');
  if (o.positionals.length > 0) throw usageError(`unexpected argument "${o.positionals[0]}"`, 'try "pgpitr restore --help"');
  const target = parseTargetOptions({
    time: x['target-time'] as string | undefined,
    xid: x['target-xid'] as string | undefined,
    lsn: x['target-lsn'] as string | undefined,
    name: x['target-name'] as string | undefined,
    immediate: x['target-immediate'] as boolean | undefined,
    exclusive: x['target-exclusive'] as boolean | undefined,
    timeline: x['target-timeline'] as string | undefined,
    action: x['target-action'] as string | undefined,
  });
  const settings = recoveryOptions((x['recovery-option'] as string[] | undefined) ?? [], x['archive-mode'] as string | undefined);
  const databases = { include: (x['db-include'] as string[] | undefined) ?? [], exclude: (x['db-exclude'] as string[] | undefined) ?? [] };
  if (x['standby'] === true && databases.include.length + databases.exclude.length > 0) {
    throw usageError('--standby cannot restore part of the databases: a standby never ends recovery, so the databases left out could never be dropped there', 'restore the standby whole, or restore in part without --standby');
  }
  const dryRun = x['dry-run'] === true;
  // restore_command fetches ahead unless archive-async is turned off (flag or configuration file).
  const asyncGet = o.archiveAsyncGiven ? o.archiveAsync : true;
  const progress = x['progress'] === true;
  const log = (line: string) => (o.output === 'json' ? undefined : printLine(line));
  let lastShown = 0;
  for (const name of o.envOnlySecrets) {
    const fix = name.startsWith('AWS_') ? 'give the repository its key in the configuration file (repoN-s3-key and repoN-s3-key-secret), or set it in the server\'s environment' : 'put it in the configuration file (or the server\'s environment)';
    printLine(`warning: ${name} is set only in this environment: the server's restore_command will not have it; ${fix}`);
  }
  for (const name of o.ownSectionSecrets) {
    printLine(`warning: ${name} is set in restore's own sections of the configuration file ([${o.stanza}:restore] or [global:restore]), not in those archive-get reads ([${o.stanza}:archive-get], [${o.stanza}], [global:archive-get], [global]): the server's restore_command will not have it; move it to [${o.stanza}] or [global]`);
  }
  const request: RepositoryRestoreRequest = {
    target,
    set: x['set'] as string | undefined,
    pgData,
    delta: x['delta'] === true,
    standby: x['standby'] === true,
    acceptArchiveGap: x['accept-archive-gap'] === true,
    recoveryOptions: settings,
    walDir: x['waldir'] as string | undefined,
    databases,
    tablespaceMap: tablespaceMappings(x['tablespace-map'] as string[] | undefined),
    tablespaceMapAll: tablespaceMapAll(x['tablespace-map-all'] as string | undefined),
    repositoryPaths: o.repos.filter((r) => r.type === 'posix').map((r) => r.path),
    // Set anywhere (flag or configuration file): that; else every core, within the option's 64.
    processMax: o.processMaxGiven ? o.processMax : Math.min(64, Math.max(1, (await import('node:os')).availableParallelism())),
    spoolPath: asyncGet ? o.spoolPath : null,
    // The prefetch's window, when given here, reaches restore_command's fetcher too (bytes: one spelling).
    reachArgs: [
      ...o.reachArgs,
      ...(argv.some((a) => a.startsWith('--archive-get-queue-max')) ? [`--archive-get-queue-max=${o.getQueueMaxBytes}`] : []),
      // restore_command ends recovery at a gap (exit 1) when told to, and with a target: PostgreSQL
      // refuses to end short of one ("recovery ended before configured recovery target was
      // reached"), and its read-ahead (PostgreSQL 15+) may ask for a segment past the target.
      ...(x['accept-archive-gap'] === true || target.target.kind !== 'end' ? ['--accept-archive-gap'] : []),
    ],
    fetchFrom: (o.repoSelected === undefined ? o.repos : [pickRepository(o.repos, o.repoSelected)]).map((r) => ({ index: r.index, location: describeRepository(r) })),
    dryRun,
    log,
    onProgress: (done, total, files, allFiles) => {
      if (!progress || (files < allFiles && Date.now() - lastShown < 1000)) return;
      lastShown = Date.now();
      printLine(`restore: ${files}/${allFiles} files, ${Math.round(done / 1048576)}/${Math.round(total / 1048576)} MiB (${total ? Math.floor((done * 100) / total) : 100}%)`);
    },
  };
  const chosen = await chooseRepository(o.repoSelected === undefined ? o.repos : [pickRepository(o.repos, o.repoSelected)], o.stanza, request, log);
  const chosenRepo = await openRepository(chosen);
  // (A restore_command of the DBA's own asks what it asks.)
  const ownCommand = settings.some((s) => s.name === 'restore_command');
  const written = o.repoSelected === undefined && !ownCommand ? await requestForOthers(o.repos, chosen, await readStanza(chosenRepo, o.stanza), o.stanza, request, printLine) : request;
  const outcome = await restoreFromRepository(chosenRepo, o.stanza, written);
  if (o.output === 'json') {
    process.stdout.write(
      JSON.stringify(
        {
          backup: outcome.plan.backup.id,
          reason: outcome.plan.reason,
          passed_over: outcome.passedOver,
          timeline: outcome.plan.branch.timeline,
          wal_needed: { first: outcome.plan.walNeeded[0], last: outcome.plan.walNeeded[outcome.plan.walNeeded.length - 1], segments: outcome.plan.walNeeded.length },
          archive_end: outcome.plan.archiveEnd,
          // Timelines archived past their fork as far as the followed one reaches (a copy promoted elsewhere?): the text output's warning.
          went_on: outcome.plan.wentOn,
          // --target-name: where the archive holds the restore point recovery stops at.
          ...(outcome.plan.restorePoint && target.target.kind === 'name'
            ? { restore_point: { name: target.target.name, lsn: formatLsn(outcome.plan.restorePoint.lsn), timeline: outcome.plan.restorePoint.timeline, time: new Date(outcome.plan.restorePoint.timeMs).toISOString() } }
            : {}),
          bytes: outcome.bytesTotal,
          dry_run: dryRun,
          // The counts under the names every command's JSON uses (snake_case).
          files: outcome.files && { written: outcome.files.written, unchanged: outcome.files.unchanged, removed: outcome.files.removed, zeroed: outcome.files.zeroed, bytes_written: outcome.files.bytesWritten, streamed: outcome.files.streamed, handed_back: outcome.files.handedBack },
          tablespaces: outcome.tablespaces,
          databases_left_out: outcome.databasesLeftOut,
          wal_dir: outcome.walDir,
        },
        null,
        2,
      ) + '\n',
    );
  } else if (outcome.files) {
    const f = outcome.files;
    log(`restore complete: ${f.written} files written (${f.bytesWritten} bytes)${x['delta'] ? `, ${f.unchanged} unchanged, ${f.removed} removed` : ''}${f.zeroed > 0 ? `, ${f.zeroed} written as zeros` : ''}; start the server to recover: pg_ctl -D ${shellWord(pgData)} start`);
    log(`its recovery settings stay in ${pgData}/postgresql.auto.conf after the recovery (between the pgpitr restore markers): remove them once the server is promoted, before a standby is cloned from it by another tool than pgpitr basebackup -R (which comments out the recovery targets)`);
    if (outcome.databasesLeftOut.length > 0) {
      // By oid: names may have changed in the WAL replayed after the backup.
      const oids = outcome.databasesLeftOut.map((d) => d.oid).join(', ');
      const names = outcome.databasesLeftOut.map((d) => quoteIdent(d.name)).join(', ');
      log(`once recovery has ended, drop the databases left out (they cannot be used): those of oid ${oids} (${names} when the backup was taken); their names now: SELECT oid, datname FROM pg_database WHERE oid IN (${oids}); then DROP DATABASE each; a database created after the backup with one of them as its template (CREATE DATABASE ... TEMPLATE, the FILE_COPY strategy: the default before PostgreSQL 15) or moved by ALTER DATABASE ... SET TABLESPACE in the WAL replayed copied zeros too: drop it as well`);
    }
    if (settings.some((o) => o.name === 'ignore_invalid_pages')) {
      log('once the databases left out are dropped, remove ignore_invalid_pages (ALTER SYSTEM RESET ignore_invalid_pages, then restart): it would hide damaged pages in any later recovery');
    }
  }
  return ExitCode.Ok;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** --tablespace-map NAME=PATH or OID=PATH, each key once (a second one for the same key would be ignored). */
function tablespaceMappings(given: string[] | undefined): TablespaceMapping[] {
  const maps = (given ?? []).map(parseTablespaceMapping);
  const twice = maps.find((m, i) => maps.findIndex((n) => n.key === m.key) !== i);
  if (twice) throw usageError(`--tablespace-map names tablespace ${twice.key} twice`, 'give each tablespace one directory');
  return maps;
}

function tablespaceMapAll(dir: string | undefined): string | undefined {
  if (dir !== undefined && !isAbsolute(dir)) throw usageError(`--tablespace-map-all path "${dir}" is relative`, 'give an absolute path');
  return dir;
}
