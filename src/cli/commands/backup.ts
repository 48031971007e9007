// `pgpitr backup --stanza S [--type full|diff|incr]`: a backup into the repository
// (backup/repo/repo-backup.ts), then retention when a policy is configured.

import { parseRepoOptions, REPO_OPTIONS_HELP, COMPRESS_OPTIONS_HELP, CONNECTION_OPTIONS_HELP } from '../repo-options.js';
import { usageError } from '../../common/errors.js';
import { readStanza } from '../../repo/stanza.js';
import { archivedAmong } from '../../repo/wal-archive-view.js';
import { openRepository } from '../../repo/open-repository.js';
import { pickRepository } from '../../repo/repo-settings.js';
import { backupToRepository } from '../../backup/repo/repo-backup.js';
import { currentPidNamespace, processIdentity } from '../../common/process-identity.js';
import { ProgressView } from '../progress-view.js';
import { RETENTION_OPTIONS, retentionPolicy } from './expire.js';
import { parseMaxRate, parseParallel } from './basebackup-args.js';
import { expireUnderLock } from '../../commands/expire.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { unrecordedKept } from '../../repo/backup-set/unrecorded.js';
import { checkOpenFileLimit } from '../../backup/parallel/open-file-limit.js';

const HELP = `pgpitr backup takes a backup of a cluster into its stanza.

Usage:
  pgpitr backup --repo PATH --stanza NAME [connection options] [OPTION]...

Options:
      --type=full|diff|incr   full (default): every file; diff: the files changed since the
                         newest complete full backup; incr: since the newest complete backup.
                         The other files are that backup's (restore reads them there, expire
                         keeps it). Without such a backup of the same cluster, version,
                         compression, timeline and kind of server (primary or standby), with
                         its end after its start by the server's clock, a full backup is
                         taken, and said so. A file counts as changed unless its size and
                         modification time are those the prior backup recorded and it was
                         last modified before that backup started (a file whose time was set
                         back, as cp -p or rsync -t do, is not seen: take a full backup then)
      --wal=archive|included  the WAL the backup needs to be consistent: waited for in the
                         stanza's archive (default), or streamed into the backup itself
      --archive-timeout=SECONDS  with --wal=archive: fail when no segment the backup needs
                         has reached the archive for this long (default 60)
      --annotation=KEY=VALUE  recorded with the backup (repeatable)
      --start-fast       ask the server for an immediate checkpoint
      --max-rate=RATE    the server sends at most RATE kB/s (k or M suffix), as pg_basebackup -r
      --retention-full=N, --retention-window=D   expire what the policy no longer needs after the
                         backup (see pgpitr expire --help; also from the configuration file)
  -j, --jobs=N           read the files with N workers of pgpitr's own (the backup is
                         registered with pg_backup_start/pg_backup_stop) instead of one
                         BASE_BACKUP stream
      --read-method=auto|direct|sql   with -j: how the workers read (see pgpitr basebackup --help)
      --resume           with -j: take over the stanza's newest backup when it failed or was
                         interrupted (same cluster, PostgreSQL version and compression),
                         keeping the files it stored that have not changed since (their
                         stored bytes are checked again); the backup keeps its id. When
                         nothing can be resumed, says why and takes a new backup. Without
                         --resume, what failed or interrupted backups stored is removed.
                         Needs the direct read method (the backup runs on the database host)
      --process-max=N    files compressed and stored at once (default 2)
  -P, --progress         show progress
  -v, --verbose          say what each phase does
${REPO_OPTIONS_HELP}${COMPRESS_OPTIONS_HELP}${CONNECTION_OPTIONS_HELP}`;

export const BACKUP_OPTIONS = {
  ...RETENTION_OPTIONS,
  type: { type: 'string' },
  wal: { type: 'string' },
  annotation: { type: 'string', multiple: true },
  'start-fast': { type: 'boolean' },
  'max-rate': { type: 'string' },
  progress: { type: 'boolean', short: 'P' },
  jobs: { type: 'string', short: 'j' },
  'read-method': { type: 'string' },
  resume: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

export async function backupCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('backup', argv, { extra: BACKUP_OPTIONS });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  if (o.positionals.length > 0) throw usageError(`unexpected argument "${o.positionals[0]}"`, 'try "pgpitr backup --help"');
  const wal = (o.extra['wal'] as string | undefined) ?? 'archive';
  if (wal !== 'archive' && wal !== 'included') throw usageError(`invalid --wal "${wal}"`, 'give archive or included');
  const annotations: Record<string, string> = {};
  for (const a of (o.extra['annotation'] as string[] | undefined) ?? []) {
    const i = a.indexOf('=');
    if (i <= 0) throw usageError(`invalid --annotation "${a}"`, 'give KEY=VALUE');
    annotations[a.slice(0, i)] = a.slice(i + 1);
  }
  const type = (o.extra['type'] as string | undefined) ?? 'full';
  if (type !== 'full' && type !== 'diff' && type !== 'incr') throw usageError(`invalid --type "${type}"`, 'give full, diff or incr');
  const parallel = parseParallel(o.extra['jobs'] as string | undefined, o.extra['read-method'] as string | undefined);
  const resume = o.extra['resume'] === true;
  if (resume && !parallel) throw usageError('--resume needs -j', 'resume with the -j option of the interrupted backup (any N)');
  if (resume && parallel!.readMethod === 'sql') throw usageError('--resume needs the direct read method', 'run the resumed backup on the database host with --read-method=direct or auto');
  // Before the backup's record is written (the engine checks again).
  if (parallel) checkOpenFileLimit(parallel.jobs);
  const chosen = pickRepository(o.repos, o.repoSelected);
  const policy = retentionPolicy(o, chosen); // refused now if invalid, not after the backup
  const repo = await openRepository(chosen);
  const stanza = await readStanza(repo, o.stanza);
  const view = new ProgressView({
    progress: o.extra['progress'] === true,
    format: 'text',
    verbose: o.extra['verbose'] === true ? 1 : 0,
    checkpointWaitNote: o.extra['start-fast'] === true ? undefined : "waiting for the server's next checkpoint, spread over checkpoint_completion_target (--start-fast asks for an immediate one)",
  });
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const record = await backupToRepository(
      {
        repo,
        stanza,
        connection: o.connection,
        compression: o.compression,
        level: o.level,
        type,
        walIncluded: wal === 'included',
        fastCheckpoint: o.extra['start-fast'] === true,
        maxRateKb: o.extra['max-rate'] === undefined ? undefined : parseMaxRate(o.extra['max-rate'] as string),
        progress: o.extra['progress'] === true,
        annotations,
        processMax: o.processMax,
        parallel,
        resume,
        archiveTimeoutMs: o.archiveTimeoutMs,
        archivedAmong: (names) => archivedAmong(repo, o.stanza, names),
        identity: identityOfThisProcess(),
      },
      view,
      ac.signal,
    );
    view.done(null);
    if (o.output === 'json') process.stdout.write(JSON.stringify(record, null, 2) + '\n');
    else printLine(`${record.type} backup ${record.id} complete${record.prior ? ` (from ${record.prior})` : ''}: ${record.file_count} files, ${record.size} bytes (${record.stored_size} stored), WAL ${record.start_wal} to ${record.stop_wal}`);
    // Retention after a successful backup, when a policy is set.
    // The backup is complete whatever happens here: a retention that cannot run now (another
    // command took the lock in between, the repository failed) is a warning, and the next backup
    // or expire applies it.
    if (policy) {
      try {
        // Each removal said as it is done: a retention that fails part-way has said what went.
        const r = await expireUnderLock(repo, o.stanza, { policy }, { dryRun: false, warn: (m) => printLine(`warning: ${m}`), removed: (id, why) => printLine(`expired backup ${id}: ${why}`) });
        if (r.walRemoved) printLine(`removed ${r.walRemoved.count} archived WAL file(s), ${r.walRemoved.first} to ${r.walRemoved.last}`);
        for (const id of r.unrecorded) printLine(`warning: ${unrecordedKept(id)}`);
      } catch (e) {
        printLine(`warning: backup ${record.id} is complete, but retention was not applied: ${(e as Error).message}; run pgpitr expire`);
      }
    }
    return ExitCode.Ok;
  } finally {
    view.done(null);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function identityOfThisProcess(): { start_ticks: string | null; boot_id: string | null; pid_ns: string | null } {
  const id = processIdentity(process.pid);
  return { start_ticks: id?.startTime ?? null, boot_id: id?.bootId ?? null, pid_ns: currentPidNamespace() };
}
