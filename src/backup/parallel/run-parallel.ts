// The engine's way into a parallel backup (-j N): the SQL session that holds
// the backup, the read method, and the request for parallel-backup.ts. Loaded
// only when -j is given.

import type { BaseBackupEvents } from '../../protocol/base-backup-stream.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import { hostClock, serverClock } from './source-clock.js';
import type { BaseBackupOptions } from '../options.js';
import type { BackupSink } from '../sink.js';
import type { ProgressTracker } from '../progress-tracker.js';
import type { BackupReporter } from '../reporter.js';
import { parseManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { PgpitrError, ServerError } from '../../common/errors.js';
import { checkDirectSource, chooseReadMethod } from './read-method.js';
import { listDataDirectory } from './pgdata-walk.js';
import { runParallelBackup } from './parallel-backup.js';
import { ReadPool } from './read-pool.js';
import { CopyJournal, JOURNAL_NAME, readJournal } from './copy-journal.js';
import type { JournalEntry } from './copy-journal.js';
import { STATE_FILE_NAME } from '../state-file.js';
import type { Session } from '../../protocol/session.js';
import { checkConnectionBudget } from './connection-budget.js';
import { SqlReadPool } from './sql-read-pool.js';
import { restatOnServer } from './sql-listing.js';
import { noticeText } from '../../protocol/notice-text.js';

export interface ParallelContext {
  opts: BaseBackupOptions;
  /** The replication session: IDENTIFY_SYSTEM gives the timeline once the backup started. */
  main: Session;
  sink: BackupSink | null;
  tracker: ProgressTracker;
  reporter: BackupReporter;
  systemIdentifier: string;
  /** The target directory (plain or tar format), where a plain backup's copy journal lives. */
  directory: string | null;
  /** The mode of files this run creates. */
  fileMode: number;
  /** Registers what ends the backup on the server when the engine aborts. */
  onClose(close: () => void): void;
  /** A page checksum failure reported (the state file keeps the first ones). */
  onChecksumFailure(message: string): void;
}

/**
 * Copies the files with the readers; returns what to do once the backup is whole (its WAL
 * received, everything synced): the resume journal goes then, not before (a resumed run that
 * fails after its copy keeps it for the next).
 */
export async function runParallel(ctx: ParallelContext, events: BaseBackupEvents): Promise<() => void> {
  const { opts, main, reporter } = ctx;
  const jobs = opts.parallel!.jobs;
  // The direct readers' threads take ~0.1 s each to load: started now, they are ready by the time
  // the files are listed, not after. Only where the direct method is likely (a server on this host).
  const early = opts.parallel!.readMethod !== 'sql' && serverOnThisHost(opts.connection.host) ? new EarlyReaders(jobs) : null;
  let sql: Awaited<ReturnType<typeof openSqlClient>>;
  try {
    sql = await openSqlClient(opts.connection, 'pgpitr parallel backup');
  } catch (e) {
    await early?.pool.stop();
    throw e;
  }
  const internals = sql as unknown as { connection: { stream: { destroy(): void } } };
  // The session holds the backup: once it is gone (terminated, the server stopped, or closed
  // by the engine on a signal or a lost WAL stream) the backup is over on the server, and
  // the readers must stop now rather than copy on until pg_backup_stop finds out.
  let pool: { abort(e: Error): void } | null = null;
  let lost: PgpitrError | null = null;
  let ending = false;
  const onLost = (e?: Error) => {
    if (ending) return;
    lost ??= sessionLost(e);
    pool?.abort(lost);
  };
  ctx.onClose(() => {
    onLost();
    internals.connection.stream.destroy();
  });
  sql.on('error', onLost);
  sql.on('end', () => onLost());
  // What the server says on the backup session (pg_backup_stop's "WAL archiving is not enabled",
  // its "still waiting for all required WAL segments to be archived"), shown as the single stream
  // shows its replication connection's.
  sql.on('notice', (n) => reporter.serverNotice(noticeText({ severity: n.severity, message: n.message, detail: n.detail, hint: n.hint })));
  let sqlReaders: SqlReadPool | null = null;
  try {
    const read = await chooseReadMethod(sql, main.serverVersionNum, ctx.systemIdentifier, opts.parallel!.readMethod);
    // The server verifies pages only in a cluster initialised with checksums.
    const checksummed = (await sql.query<{ v: string }>(`SELECT current_setting('data_checksums') AS v`)).rows[0]?.v === 'on';
    const verifyChecksums = opts.verifyChecksums && checksummed;
    const workers = `${jobs} worker${jobs === 1 ? '' : 's'}`;
    if (read.method === 'sql') {
      // N connections of their own, opened before the backup starts: a server that will not take them refuses -j now.
      await checkConnectionBudget(sql, main.serverVersionNum, jobs);
      // Each reader thread opens its own (sql-read-pool.ts).
      sqlReaders = await SqlReadPool.open(jobs, opts.connection);
      const opened = sqlReaders;
      ctx.onClose(() => opened.abort(lost ?? sessionLost()));
      reporter.info(`reading files with ${workers} through SQL (pg_read_binary_file) from "${read.root}" on the server`);
    } else {
      reporter.info(`reading files with ${workers} straight from "${read.dataDirectory}"`);
    }
    // A plain backup on this host journals what it copied, so that --resume can keep it.
    let resume: { journal: CopyJournal; previous: ReadonlyMap<string, JournalEntry>; resuming: boolean; spare: ReadonlySet<string> } | undefined;
    if (read.method === 'direct' && ctx.directory !== null && ctx.sink?.directRoot) {
      const previous = opts.resume ? readJournal(ctx.directory) : new Map<string, JournalEntry>();
      resume = { journal: new CopyJournal(ctx.directory, ctx.fileMode, previous.values()), previous, resuming: opts.resume === true, spare: new Set([STATE_FILE_NAME, JOURNAL_NAME, 'pg_wal']) };
    } else if (opts.resume || (read.method !== 'direct' && ctx.sink?.fileStore?.().resuming)) {
      // A repository backup's journal is kept by the direct readers' file store alone.
      throw new PgpitrError('ERR_USAGE', '--resume needs the direct read method', { hint: 'run the resumed backup on the database host' });
    }
    await runParallelBackup(
      {
        sql,
        serverVersionNum: main.serverVersionNum,
        systemIdentifier: ctx.systemIdentifier,
        label: opts.label,
        fastCheckpoint: opts.fastCheckpoint,
        waitForArchive: opts.serverWaitsForArchive ?? opts.walMethod === 'none',
        jobs,
        maxRateKb: opts.maxRateKb,
        verifyChecksums,
        recordChecksumFailures: opts.recordChecksumFailures,
        manifest: opts.manifest ? { algorithm: parseManifestChecksumAlgorithm(opts.manifestChecksums ?? 'CRC32C'), forceEncode: opts.manifestForceEncode } : null,
        tablespaceMap: opts.format === 'tar',
        fileMode: ctx.fileMode,
        currentTimeline: async () => {
          const row = (await main.query('IDENTIFY_SYSTEM'))[0]?.rows[0];
          const tli = Number(row?.[1]);
          if (!Number.isInteger(tli) || tli < 1) throw new PgpitrError('ERR_PROTOCOL', 'IDENTIFY_SYSTEM returned no timeline');
          return tli;
        },
        openReaders: (n, onFailure) => {
          sqlReaders?.reportFailuresTo(onFailure);
          const readers = sqlReaders ?? early?.take(onFailure) ?? new ReadPool(n, onFailure);
          pool = readers;
          if (lost) readers.abort(lost);
          return readers;
        },
        list: (startLsn) => {
          if (read.method === 'sql') return sqlReaders!.list({ serverVersionNum: main.serverVersionNum, root: read.root, statsTempDir: read.statsTempDir, verifyChecksums });
          checkDirectSource(read.dataDirectory, startLsn);
          return listDataDirectory(read.dataDirectory, { serverVersionNum: main.serverVersionNum, statsTempDir: read.statsTempDir, verifyChecksums });
        },
        // The direct readers look at a file's size as its copy begins; through SQL it is asked apart.
        restat: read.method === 'sql' ? (files) => restatOnServer(sql, files) : undefined,
        directRoot: ctx.sink?.directRoot?.bind(ctx.sink),
        fileStore: ctx.sink?.fileStore?.(),
        writeBehind: !opts.noSync,
        // The sql method copies the server's files: a copy's start is told by its clock (what --resume compares the files' times with).
        sourceClock: read.method === 'sql' ? await serverClock((text) => sql.query<{ us: string }>(text)) : hostClock,
        directTar: ctx.sink?.directTar?.bind(ctx.sink),
        // Only the direct readers compress: the sink is asked only for them (it then expects compressed data).
        tarEncoding: read.method === 'direct' ? (ctx.sink?.precompressTar?.() ?? null) : null,
        // Asked after precompressTar: a sink that no longer compresses may then lend too.
        tarDataReleases: ctx.sink?.lendTarData?.() === true,
        onBytes: (n) => ctx.tracker.addBytes(n),
        warn: (m) => {
          reporter.warn(m);
          // Recorded in the state file as the server's notices are for one BASE_BACKUP stream.
          if (/checksum verification fail/.test(m)) ctx.onChecksumFailure(m);
        },
        info: (m) => reporter.info(m),
        resume,
      },
      events,
    );
    return () => resume?.journal.remove();
  } catch (e) {
    // A query that failed because the session went away: say so (exit 9), not node-postgres's words.
    throw lost && !(e instanceof PgpitrError) ? lost : e;
  } finally {
    ending = true;
    try {
      // Not taken (the sql method, or a failure before the copy): stopped here; taken, the backup stopped it.
      if (early && !early.taken) await early.pool.stop();
      await sqlReaders?.stop();
    } finally {
      // Whatever the readers' stopping does: the session holding the backup ends (the server leaves backup mode).
      await sql.end().catch(() => {});
    }
  }
}

/** Reader threads started before the read method is known; their failures go where take() says. */
class EarlyReaders {
  readonly pool: ReadPool;
  taken = false;
  private failure: Error | null = null;
  private onFailure: ((e: Error) => void) | null = null;

  constructor(jobs: number) {
    this.pool = new ReadPool(jobs, (e) => (this.onFailure ? this.onFailure(e) : (this.failure ??= e)));
  }

  take(onFailure: (e: Error) => void): ReadPool {
    this.taken = true;
    this.onFailure = onFailure;
    if (this.failure) onFailure(this.failure);
    return this.pool;
  }
}

/** A Unix socket or a loopback address: where the data directory can be on this host. */
function serverOnThisHost(host: string | undefined): boolean {
  if (!host || host.startsWith('/') || host.startsWith('@')) return true;
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The session holding the backup ended: the server's FATAL (pg_terminate_backend, a shutdown) or a closed socket. */
function sessionLost(e?: Error): PgpitrError {
  const fields = e as (Error & { severity?: string; code?: string }) | undefined;
  if (fields?.severity && fields.code) {
    return new ServerError({ severity: fields.severity, sqlState: fields.code, message: fields.message }, 'the SQL session holding the backup was ended by the server');
  }
  return new PgpitrError('ERR_CONNECTION_LOST', `the SQL session holding the backup was lost${e ? `: ${e.message}` : ''}`, {
    hint: 'the server ended the backup when the session went away (it stopped, or the connection was cut); run the backup again',
  });
}
