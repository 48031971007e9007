// The engine's way into a parallel backup (-j N): the SQL session that holds
// the backup, the read method, and the request for parallel-backup.ts. Loaded
// only when -j is given.

import type { BaseBackupEvents } from '../../protocol/base-backup-stream.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import type { BaseBackupOptions } from '../options.js';
import type { BackupSink } from '../sink.js';
import type { ProgressTracker } from '../progress-tracker.js';
import type { BackupReporter } from '../reporter.js';
import { parseManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { PgpitrError } from '../../common/errors.js';
import { chooseReadMethod } from './read-method.js';
import { listDataDirectory } from './pgdata-walk.js';
import { runParallelBackup } from './parallel-backup.js';
import { ReadPool } from './read-pool.js';
import { Session } from '../../protocol/session.js';
import { checkConnectionBudget } from './connection-budget.js';
import { listDataDirectoryBySql } from './sql-listing.js';
import { SqlReaders } from './sql-readers.js';

export interface ParallelContext {
  opts: BaseBackupOptions;
  /** The replication session: IDENTIFY_SYSTEM gives the timeline once the backup started. */
  main: Session;
  sink: BackupSink | null;
  tracker: ProgressTracker;
  reporter: BackupReporter;
  systemIdentifier: string;
  /** Registers what ends the backup on the server when the engine aborts. */
  onClose(close: () => void): void;
}

export async function runParallel(ctx: ParallelContext, events: BaseBackupEvents): Promise<void> {
  const { opts, main, reporter } = ctx;
  const jobs = opts.parallel!.jobs;
  const sql = await openSqlClient(opts.connection, 'pgpitr parallel backup');
  const internals = sql as unknown as { connection: { stream: { destroy(): void } } };
  ctx.onClose(() => internals.connection.stream.destroy());
  sql.on('error', () => {}); // a lost session fails the query in progress; nothing more to say
  const readerSessions: Session[] = [];
  try {
    const read = await chooseReadMethod(sql, main.serverVersionNum, ctx.systemIdentifier, opts.parallel!.readMethod);
    // The server verifies pages only in a cluster initialised with checksums.
    const checksummed = (await sql.query<{ v: string }>(`SELECT current_setting('data_checksums') AS v`)).rows[0]?.v === 'on';
    const verifyChecksums = opts.verifyChecksums && checksummed;
    const workers = `${jobs} worker${jobs === 1 ? '' : 's'}`;
    if (read.method === 'sql') {
      // N connections of their own, opened before the backup starts: a server that will not take them refuses -j now.
      await checkConnectionBudget(sql, main.serverVersionNum, jobs);
      for (let i = 0; i < jobs; i++) {
        const s = await Session.open(opts.connection, 'none', `backup reader connection ${i + 1}`);
        readerSessions.push(s);
        ctx.onClose(() => s.abort());
      }
      reporter.info(`reading files with ${workers} through SQL (pg_read_binary_file) from "${read.root}" on the server`);
    } else {
      reporter.info(`reading files with ${workers} straight from "${read.dataDirectory}"`);
    }
    await runParallelBackup(
      {
        sql,
        serverVersionNum: main.serverVersionNum,
        systemIdentifier: ctx.systemIdentifier,
        label: opts.label,
        fastCheckpoint: opts.fastCheckpoint,
        waitForArchive: opts.walMethod === 'none',
        jobs,
        maxRateKb: opts.maxRateKb,
        verifyChecksums,
        manifest: opts.manifest ? { algorithm: parseManifestChecksumAlgorithm(opts.manifestChecksums ?? 'CRC32C'), forceEncode: opts.manifestForceEncode } : null,
        tablespaceMap: opts.format === 'tar',
        currentTimeline: async () => {
          const row = (await main.query('IDENTIFY_SYSTEM'))[0]?.rows[0];
          const tli = Number(row?.[1]);
          if (!Number.isInteger(tli) || tli < 1) throw new PgpitrError('ERR_PROTOCOL', 'IDENTIFY_SYSTEM returned no timeline');
          return tli;
        },
        openReaders: (n, onFailure) => (read.method === 'sql' ? new SqlReaders(readerSessions, onFailure) : new ReadPool(n, onFailure)),
        list: () =>
          read.method === 'sql'
            ? listDataDirectoryBySql(readerSessions[0]!, { serverVersionNum: main.serverVersionNum, root: read.root, statsTempDir: read.statsTempDir, verifyChecksums })
            : listDataDirectory(read.dataDirectory, { serverVersionNum: main.serverVersionNum, statsTempDir: read.statsTempDir, verifyChecksums }),
        directRoot: ctx.sink?.directRoot?.bind(ctx.sink),
        onBytes: (n) => ctx.tracker.addBytes(n),
        warn: (m) => reporter.warn(m),
      },
      events,
    );
  } finally {
    for (const s of readerSessions) s.close();
    await sql.end().catch(() => {});
  }
}
