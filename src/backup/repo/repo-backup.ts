// `pgpitr backup`: a full backup into the repository. One backup of a stanza
// at a time (the stanza's backup lock). The record says "running" from the
// start; the base-backup engine streams the cluster into a backup set
// (RepoSink); the WAL from the backup's start to its stop must then be in the
// archive (or, with wal "included", in the set itself), and only then is the
// record rewritten "complete". Any failure leaves it "failed" with the reason,
// and the set's stored files are removed.

import type { BaseBackupOptions } from '../options.js';
import { hostname } from 'node:os';
import { PgpitrError } from '../../common/errors.js';
import type { Repository } from '../../repo/repository.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import { parseLsn, segmentBefore, segmentFileName, segmentNumber } from '../../postgres/lsn.js';
import { RepoLock } from '../../repo/lock.js';
import { backupLockPath } from '../../repo/layout.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import { BackupSetWriter } from '../../repo/backup-set/writer.js';
import { backupDir, newBackupId, writeRecord } from '../../repo/backup-set/record.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';
import { storageJoin } from '../../storage/storage-path.js';
import { takeBaseBackup } from '../engine.js';
import type { BackupReporter } from '../reporter.js';
import { RepoSink } from './repo-sink.js';

export interface RepoBackupRequest {
  repo: Repository;
  stanza: StanzaInfo;
  connection: ConnectionSettings;
  compression: CompressionAlgorithm | 'none';
  level?: number | undefined;
  /** Stream the WAL to consistency into the set (self-contained), rather than rely on the archive. */
  walIncluded: boolean;
  fastCheckpoint: boolean;
  maxRateKb?: number | undefined;
  progress: boolean;
  annotations: Record<string, string>;
  processMax: number;
  /** -j N: our own readers instead of BASE_BACKUP. */
  parallel?: BaseBackupOptions['parallel'];
  archiveTimeoutMs: number;
  /** Names of the WAL files in the stanza's archive, read afresh at each call. */
  archivedNames(): Promise<string[]>;
  /** What identifies this process (for a record left "running" by a crash). */
  identity: { start_ticks: string | null; boot_id: string | null };
  now?: () => Date;
}

export async function backupToRepository(req: RepoBackupRequest, reporter: BackupReporter, signal?: AbortSignal): Promise<BackupRecord> {
  const stanzaName = req.stanza.stanza;
  const lock = await RepoLock.acquire(req.repo.storage, backupLockPath(stanzaName), 'backup');
  try {
    const now = req.now ?? (() => new Date());
    const existing = new Set((await req.repo.storage.list(storageJoin(stanzaName, 'backup'))).map((e) => e.name));
    const started = now();
    const id = newBackupId(started, existing);
    const record: BackupRecord = {
      format: 'pgpitr-backup',
      format_version: 1,
      id,
      type: 'full',
      state: 'running',
      stanza: stanzaName,
      label: `pgpitr backup ${id}`,
      system_identifier: req.stanza.system_identifier,
      pg_version_num: 0,
      timeline: null,
      start_lsn: null,
      stop_lsn: null,
      start_wal: null,
      stop_wal: null,
      start_time: started.toISOString(),
      stop_time: null,
      stop_next_xid: null,
      backup_from: null,
      wal: req.walIncluded ? 'included' : 'archive',
      compression: req.compression,
      size: null,
      stored_size: null,
      file_count: null,
      databases: [],
      annotations: req.annotations,
      pinned: false,
      process: { host: hostname(), pid: process.pid, ...req.identity },
      error: null,
    };
    await writeRecord(req.repo.storage, record);
    reporter.info(`backup ${id} started`);
    const writer = new BackupSetWriter({
      storage: req.repo.storage,
      dir: backupDir(stanzaName, id),
      backupId: id,
      compression: req.compression,
      level: req.level,
      parallel: Math.max(2, req.processMax, req.parallel?.jobs ?? 0),
    });
    try {
      const sql = await openSqlClient(req.connection, 'pgpitr backup');
      try {
        const facts = await sql.query<{ standby: boolean; version: string }>(`select pg_is_in_recovery() as standby, current_setting('server_version_num') as version`);
        record.backup_from = facts.rows[0]!.standby ? 'standby' : 'primary';
        record.pg_version_num = Number(facts.rows[0]!.version);
        const dbs = await sql.query<{ name: string; oid: number; size: string }>(
          'select datname as name, oid::int as oid, pg_database_size(oid)::text as size from pg_database where datallowconn order by datname',
        );
        record.databases = dbs.rows.map((d) => ({ name: d.name, oid: d.oid, size: Number(d.size) }));
        const sink = new RepoSink(writer);
        const result = await takeBaseBackup(
          {
            connection: req.connection,
            target: { kind: 'repository' },
            format: 'plain',
            walMethod: req.walIncluded ? 'stream' : 'none',
            compression: null,
            fastCheckpoint: req.fastCheckpoint,
            maxRateKb: req.maxRateKb,
            label: record.label,
            progress: req.progress,
            estimateSize: true,
            createSlot: false,
            noSlot: false,
            tablespaceMappings: [],
            writeRecoveryConf: false,
            noClean: false,
            noSync: false,
            manifest: true,
            // The set records every file's SHA-256 already: the kept backup_manifest uses the same
            // checksum, which a parallel backup's readers then compute once for both.
            manifestChecksums: req.parallel ? 'SHA256' : undefined,
            manifestForceEncode: false,
            verifyChecksums: true,
            statusIntervalMs: 10_000,
            sink,
            parallel: req.parallel,
            expectSystemIdentifier: req.stanza.system_identifier,
          },
          reporter,
          signal,
        );
        const xmax = await sql.query<{ xmax: string }>('select pg_snapshot_xmax(pg_current_snapshot())::text as xmax');
        record.stop_next_xid = xmax.rows[0]!.xmax;
        record.timeline = result.timeline;
        record.start_lsn = result.startLsn;
        record.stop_lsn = result.endLsn;
        const seg = req.stanza.wal_segment_size;
        record.start_wal = segmentFileName(result.timeline, segmentNumber(parseLsn(result.startLsn), seg), seg);
        record.stop_wal = segmentFileName(result.timeline, segmentBefore(parseLsn(result.endLsn), seg), seg);
        record.stop_time = now().toISOString();
        const m = sink.manifest!;
        record.file_count = m.files.length;
        record.size = writer.originalBytes;
        record.stored_size = writer.storedBytes;
      } finally {
        await sql.end().catch(() => {});
      }
      if (!req.walIncluded) await waitForArchivedWal(req, record, signal);
      record.state = 'complete';
      await writeRecord(req.repo.storage, record);
      reporter.info(`backup ${id} complete`);
      return record;
    } catch (e) {
      await writer.abort();
      record.state = 'failed';
      record.error = (e as Error).message;
      try {
        await req.repo.storage.remove(storageJoin(backupDir(stanzaName, id), 'data'), { recursive: true });
        await req.repo.storage.remove(storageJoin(backupDir(stanzaName, id), 'bundle'), { recursive: true });
        await writeRecord(req.repo.storage, record);
      } catch {
        /* the repository may be what failed; the record then still says running, and reads as interrupted */
      }
      throw e;
    }
  } finally {
    await lock.release();
  }
}

/** The backup is usable only with every segment from its start to its stop in the archive. */
async function waitForArchivedWal(req: RepoBackupRequest, r: BackupRecord, signal?: AbortSignal): Promise<void> {
  const seg = req.stanza.wal_segment_size;
  const first = segmentNumber(parseLsn(r.start_lsn!), seg);
  const last = segmentBefore(parseLsn(r.stop_lsn!), seg);
  const deadline = Date.now() + req.archiveTimeoutMs;
  for (;;) {
    const have = new Set(await req.archivedNames());
    const missing: string[] = [];
    for (let s = first; s <= last; s++) {
      const name = segmentFileName(r.timeline!, s, seg);
      if (!have.has(name)) missing.push(name);
    }
    if (missing.length === 0) return;
    if (Date.now() > deadline || signal?.aborted) {
      throw new PgpitrError('ERR_CHECK', `the WAL backup ${r.id} needs is not in the archive: ${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} missing after ${req.archiveTimeoutMs / 1000} s`, {
        hint: 'check archive_command (pgpitr check tells what is wrong), or take the backup with --wal=included to keep that WAL in the backup itself',
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
