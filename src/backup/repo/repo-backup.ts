// `pgpitr backup`: a full, differential or incremental backup into the
// repository (a diff or incr stores only the files changed since its prior
// backup, prior-choice.ts, and names that backup for the others). One backup of a stanza
// at a time (the stanza's backup lock). The record says "running" from the
// start; the base-backup engine streams the cluster into a backup set
// (RepoSink); the WAL from the backup's start to its stop must then be in the
// archive (or, with wal "included", in the set itself), and only then is the
// record rewritten "complete". Any failure leaves it "failed" with the reason.
//
// A -j backup (direct read method) journals the files it stored
// (backup-set/set-journal.ts); when it fails, what it stored is kept, and so
// it is when it is killed (its record then says "running" with a dead
// process: interrupted). `--resume` takes such a backup over (resume-choice.ts
// says when): same id (as pgBackRest keeps the aborted backup's label), a new
// run with its own LSNs and times, the files that did not change kept after
// their stored bytes are checked again. Without --resume, or when the newest
// backup cannot be resumed, the stored files of every failed or interrupted
// backup are removed before a new one starts (their records stay "failed" or
// "interrupted" until expire removes them); a failed backup with nothing
// journaled loses its stored files at once, as before.

import type { BaseBackupOptions } from '../options.js';
import { hostname } from 'node:os';
import { PgpitrError } from '../../common/errors.js';
import type { Repository } from '../../repo/repository.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import { pageImageFacts } from './page-image-facts.js';
import { parseLsn, segmentBefore, segmentFileName, segmentNumber } from '../../postgres/lsn.js';
import { RepoLock } from '../../repo/lock.js';
import { ensureStanzaPresent } from '../../repo/stanza-presence.js';
import { backupLockPath } from '../../repo/layout.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import { BackupSetWriter } from '../../repo/backup-set/writer.js';
import { backupDir, listRecords, newBackupId, readRecord, recordProcessAlive, writeRecord } from '../../repo/backup-set/record.js';
import { JOURNAL_DIR, readSetJournal, SetJournalWriter } from '../../repo/backup-set/set-journal.js';
import type { SetJournalEntry } from '../../repo/backup-set/set-journal.js';
import { chooseResumable, versionProblem } from './resume-choice.js';
import { ADVISORY_LOCKS_WARNING } from '../../repo/conditional-create.js';
import type { BackupRecord, BackupType } from '../../repo/backup-set/record.js';
import { manifestReferences } from '../../repo/backup-set/manifest.js';
import type { PriorSet } from '../../repo/backup-set/writer.js';
import { aBackup, checkResumedPrior, choosePrior, loadPrior } from './prior-choice.js';
import { storageJoin } from '../../storage/storage-path.js';
import { takeBaseBackup } from '../engine.js';
import type { BackupReporter } from '../reporter.js';
import { RepoSink } from './repo-sink.js';
import { onLiveClient, refuseUnarchivedServer, serverFacts, serverOfStanza, stopFacts, TABLESPACES_SQL, insideDataDir, transactionHorizon } from './server-facts.js';
import type { ServerOfStanza } from './server-facts.js';
import { waitForArchivedWal } from './archived-wal-wait.js';
import { storeTimelineHistory } from './timeline-history-store.js';
import { repoEngineOptions } from './engine-options.js';
import { recordedChecksumFailures } from './checksum-failures.js';
import { nextBundleNumber, noSpaceLeft, removeStoredFiles } from './set-files.js';
import { timelineSwitched } from '../timeline-switched.js';
import { DATED_AHEAD_SLACK_MS } from '../../repo/retention.js';
import { firstCause } from '../../storage/stream-echo.js';

export interface RepoBackupRequest {
  repo: Repository;
  stanza: StanzaInfo;
  connection: ConnectionSettings;
  compression: CompressionAlgorithm | 'none';
  level?: number | undefined;
  /** full (default), diff or incr: a diff or incr without a prior backup to compare with is taken full. */
  type?: BackupType | undefined;
  /** Stream the WAL to consistency into the set (self-contained), rather than rely on the archive. */
  walIncluded: boolean;
  fastCheckpoint: boolean;
  maxRateKb?: number | undefined;
  progress: boolean;
  annotations: Record<string, string>;
  processMax: number;
  /** -j N: our own readers instead of BASE_BACKUP. */
  parallel?: BaseBackupOptions['parallel'];
  /** --resume: take over the newest backup when it failed or was interrupted (resume-choice.ts). */
  resume?: boolean | undefined;
  archiveTimeoutMs: number;
  /** Which of these WAL file names the stanza's archive holds, read afresh at each call. */
  archivedAmong(names: string[]): Promise<Set<string>>;
  /** What identifies this process (for a record left "running" by a crash). */
  identity: { start_ticks: string | null; boot_id: string | null; pid_ns?: string | null };
  now?: () => Date;
}

export async function backupToRepository(req: RepoBackupRequest, reporter: BackupReporter, signal?: AbortSignal): Promise<BackupRecord> {
  const stanzaName = req.stanza.stanza;
  const lock = await RepoLock.acquire(req.repo.storage, backupLockPath(stanzaName), 'backup', undefined, `stanza "${stanzaName}"`);
  if (lock.advisory) reporter.warn(`${req.repo.location}: ${ADVISORY_LOCKS_WARNING}`);
  try {
    // The record was read before the lock: a stanza-delete may have run in between.
    await ensureStanzaPresent(req.repo, req.stanza, { fresh: true });
    const now = req.now ?? (() => new Date());
    const storage = req.repo.storage;
    const records = await listRecords(storage, stanzaName);
    warnDatedAhead(records, now(), reporter);
    // Holding the lock where the store enforces it, no other backup runs anywhere: a "running" record is a dead run, of another host too.
    const alive = (r: BackupRecord) => !lock.enforced && recordProcessAlive(r);
    const server = await serverOfStanza(req);
    if (!req.walIncluded) refuseUnarchivedServer(server, stanzaName);
    const resumed = req.resume ? await findResumable(req, records, reporter, alive, server) : null;
    // What failed or interrupted backups stored is of no use once a new backup starts without them.
    for (const listed of records) {
      if (listed.id === resumed?.from.id || listed.state === 'complete') continue;
      // Only a record read back whole and saying so: one that cannot be read now (damaged, or
      // an I/O error) is listed as failed, and may be a complete backup's. Expire deals with those.
      const r = await readRecord(storage, stanzaName, listed.id).catch(() => null);
      if (r === null || r.state === 'complete' || (r.state === 'running' && alive(r))) continue;
      if (await removeStoredFiles(storage, backupDir(stanzaName, r.id))) reporter.info(`removed what ${r.state === 'failed' ? 'failed' : 'interrupted'} backup ${r.id} had stored${req.resume ? '' : ' (--resume would have taken it over)'}`);
    }
    // A resumed backup stays what it was, compared with the same prior backup (findResumable checked it is there).
    let type: BackupType = resumed?.from.type ?? req.type ?? 'full';
    let priorRecord = resumed ? (records.find((r) => r.id === resumed.from.prior) ?? null) : null;
    if (resumed && priorRecord) checkResumedPrior(resumed.from, priorRecord, records, { ...server, compression: resumed.from.compression });
    let prior: PriorSet | undefined;
    if (!resumed && type !== 'full') {
      const choice = choosePrior(records, type, { ...server, compression: req.compression });
      if ('reason' in choice) {
        reporter.warn(`no backup to take ${aBackup(type)} from: ${choice.reason}; taking a full backup`);
        type = 'full';
      } else priorRecord = choice.prior;
    }
    if (priorRecord) {
      try {
        prior = await loadPrior(storage, priorRecord);
        if (prior.missing) reporter.warn(`backup ${priorRecord.id}: the stored bytes of ${prior.missing} of its files are gone; this backup stores them again (pgpitr verify names them)`);
      } catch (e) {
        if (resumed) throw e;
        reporter.warn(`backup ${priorRecord.id} cannot be read (${(e as Error).message}); taking a full backup`);
        priorRecord = null;
        type = 'full';
      }
    }
    const existing = new Set((await storage.list(storageJoin(stanzaName, 'backup'))).map((e) => e.name));
    const started = now();
    const id = resumed?.from.id ?? newBackupId(started, existing, type);
    const record: BackupRecord = {
      format: 'pgpitr-backup',
      format_version: 1,
      id,
      type,
      prior: priorRecord?.id ?? null,
      references: [],
      server_start_time: null,
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
    if (resumed) {
      record.label = resumed.from.label;
      // Known already (resume-choice checked it): a later --resume must still see it should this run die before it asks the server.
      record.pg_version_num = resumed.from.pg_version_num;
      record.backup_from = resumed.from.backup_from;
    }
    await writeRecord(storage, record);
    reporter.info(resumed ? `backup ${id} resumed: ${resumed.previous.size} stored files of the interrupted run to check` : `backup ${id} started${priorRecord ? ` (${type}, from backup ${priorRecord.id})` : ''}`);
    const dir = backupDir(stanzaName, id);
    const writer = new BackupSetWriter({
      storage,
      dir,
      backupId: id,
      compression: req.compression,
      level: req.level,
      parallel: Math.max(2, req.processMax, req.parallel?.jobs ?? 0),
      notice: (m) => reporter.info(m),
      journal: new SetJournalWriter(storage, dir, resumed?.lastBatch ?? 0),
      resume: resumed ? { previous: resumed.previous, firstBundle: await nextBundleNumber(storage, dir) } : undefined,
      prior,
    });
    /** The record saying complete is being written: whether it landed is read back on an error. */
    let committing = false;
    try {
      const sql = await openSqlClient(req.connection, 'pgpitr backup');
      let stopped: ReturnType<typeof stopFacts> | null = null; // asked when the server ends the backup, not once the WAL is in and the files synced
      try {
        // The server's clock before the backup starts: what a later diff or incr compares files' modification times with.
        const facts = await serverFacts(sql);
        // Taken over from another role's server (a primary's run resumed on a standby): its files' times are another host's, what a diff's prior was judged by.
        if (resumed && resumed.from.backup_from !== null && resumed.from.backup_from !== facts.backupFrom) throw new PgpitrError('ERR_CHECK', `backup ${resumed.from.id} was taken from a ${resumed.from.backup_from}, the server is a ${facts.backupFrom} now: --resume takes over a backup of the same server`, { hint: 'take a new backup without --resume (it removes what the interrupted one stored)' });
        record.backup_from = facts.backupFrom;
        record.pg_version_num = facts.pgVersionNum;
        record.server_start_time = new Date(facts.clockMs).toISOString();
        record.start_xmin = await transactionHorizon(sql);
        if (priorRecord && Math.floor(priorRecord.pg_version_num / 10000) !== Math.floor(record.pg_version_num / 10000)) {
          throw new PgpitrError('ERR_CHECK', `backup ${priorRecord.id} is of PostgreSQL ${priorRecord.pg_version_num}, the server now runs ${record.pg_version_num}: ${aBackup(type)} cannot build on it`, { hint: 'take a full backup' });
        }
        // Known from now on to a later --resume, should this run be killed.
        await writeRecord(storage, record);
        // pg_database_size() wants CONNECT on the database (or pg_read_all_stats): a backup role
        // kept out of a database (REVOKE CONNECT ... FROM PUBLIC) records no size for it.
        const dbs = await sql.query<{ name: string; oid: string; size: string | null }>(
          `select datname as name, oid::int8 as oid,
                  case when has_database_privilege(oid, 'CONNECT') or pg_has_role('pg_read_all_stats', 'USAGE') then pg_database_size(oid)::text end as size
             from pg_database where datallowconn order by datname`,
        );
        record.databases = dbs.rows.map((d) => ({ name: d.name, oid: Number(d.oid), size: d.size === null ? null : Number(d.size) })); // int8: oids past 2^31
        const spaces = await sql.query<{ name: string; oid: string; location: string; dir: string | null }>(TABLESPACES_SQL);
        record.tablespace_names = spaces.rows.map((t) => ({ oid: Number(t.oid), name: t.name }));
        for (const name of insideDataDir(spaces.rows)) reporter.warn(`tablespace ${name} lies inside the data directory: restore cannot put it back there, and needs --tablespace-map ${name}=PATH outside it (to move it: stop the server, move the directory out of the data directory and point its link in pg_tblspc at the new place)`);
        const sink = new RepoSink(writer);
        const askStopFacts = () => (stopped ??= stopFacts(sql, req.connection, (m) => reporter.warn(m)));
        const result = await takeBaseBackup(repoEngineOptions(req, record.label!, sink, () => void askStopFacts()), reporter, signal);
        // The server was checked to be on the prior backup's timeline before: a promotion since means
        // its files may have moved on another history, and the unchanged ones are not known to be.
        if (priorRecord && result.timeline !== priorRecord.timeline) {
          throw new PgpitrError('ERR_CHECK', `the server moved to timeline ${result.timeline} while ${aBackup(type)} from backup ${priorRecord.id} (timeline ${String(priorRecord.timeline)}) started`, {
            hint: 'take the backup again: it will be a full backup on the new timeline',
          });
        }
        Object.assign(record, await askStopFacts());
        // Not known when they cannot be read now (the files are stored): restore then refuses leaving databases out.
        record.page_images = await onLiveClient(sql, req.connection, (c) => pageImageFacts(c, req.connection, record.databases)).catch((e: Error) => {
          reporter.warn(`what WAL replay needs of the databases was not recorded (${e.message}): restoring part of them (--db-include) will be refused`);
          return undefined;
        });
        // The record names one timeline for the WAL from start to stop (parallel-backup.ts refuses the same).
        if (result.endTimeline > result.timeline) throw timelineSwitched(result.timeline, result.endTimeline);
        record.timeline = result.timeline;
        record.start_lsn = result.startLsn;
        record.stop_lsn = result.endLsn;
        const seg = req.stanza.wal_segment_size;
        record.start_wal = segmentFileName(result.timeline, segmentNumber(parseLsn(result.startLsn), seg), seg);
        record.stop_wal = segmentFileName(result.timeline, segmentBefore(parseLsn(result.endLsn), seg), seg);
        record.stop_time = now().toISOString();
        const m = sink.manifest!;
        record.file_count = m.files.length;
        record.references = manifestReferences(m);
        const failures = recordedChecksumFailures(result.checksumFailures, m, records);
        if (failures.recorded.length > 0) record.page_checksum_failures = failures.recorded;
        if (failures.ownStored > 0 || (failures.olderCopies.length === 0 && result.checksumFailures.length > 0)) {
          reporter.warn(`backup ${id}: the source has damaged pages (the page checksum failures above): they are stored as they are, and restore brings them back; repair the source (pgpitr info --set ${id} names them)`);
        }
        for (const o of failures.olderCopies) {
          reporter.warn(`backup ${id}: the source's ${o.path} has damaged pages (above), but its size and time did not change since backup ${o.from} (damage that changes neither, as a failing disk's): this backup takes that backup's copy of it, as it was then; repair the source, and compare with what that copy holds`);
        }
        record.size = writer.originalBytes;
        record.stored_size = writer.storedBytes;
        if (prior) reporter.info(`${type} backup ${id}: ${writer.referenced.files} unchanged files (${writer.referenced.bytes} bytes) taken from backup ${prior.id}, ${m.files.length - writer.referenced.files} stored`);
        if (resumed) reporter.info(`resumed backup ${id}: kept ${writer.kept.files} files (${writer.kept.bytes} of ${writer.originalBytes} bytes) the interrupted run had stored, copied the rest`);
      } finally {
        await stopped; // never throws; its query is not cut by the end of the connection (a failed backup)
        await sql.end().catch(() => {});
      }
      // A timeline begun before the stanza existed: its history file is not archived (timeline-history-store.ts).
      await storeTimelineHistory(req, record.timeline!, reporter);
      // With --wal=included, only for a stop on a segment boundary (archived-wal-wait.ts).
      await waitForArchivedWal(req, record, signal);
      record.state = 'complete';
      committing = true;
      await writeRecord(storage, record);
      committing = false;
      reporter.info(`backup ${id} complete`);
      // The journal served its purpose; one left by a failure here is harmless (restore reads the manifest).
      await storage.remove(storageJoin(dir, JOURNAL_DIR), { recursive: true }).catch((e: Error) => reporter.warn(`could not remove the copy journal of backup ${id}: ${e.message}`));
      return record;
    } catch (caught) {
      // A full disk may reach here first as the echo of the write that gave up (stream-echo.ts).
      const e = firstCause(caught, await writer.abort());
      // The write of "complete" failed as far as it says: it may have landed all the same (an
      // object store's answer lost, a directory sync failing after the rename).
      let readBackNotComplete = false;
      let notDurable = false;
      let readBack = false;
      if (committing) {
        const back = await readRecord(storage, stanzaName, id).catch(() => undefined);
        readBack = back !== undefined;
        if (back?.state === 'complete') {
          // From an object store, what reads back is there. On a file system, a failed sync leaves
          // the rename in the page cache, and no later sync can say it reached the disk: the
          // backup is marked failed below (its files kept), never counted by an expire.
          if (storage.pathSync === undefined) {
            reporter.warn(`writing the record of backup ${id} reported an error (${(e as Error).message}), yet it reads back complete: the backup is complete`);
            return record;
          }
          notDurable = true;
        }
        readBackNotComplete = back !== undefined && back?.state !== 'complete';
      }
      record.state = 'failed';
      record.error = (e as Error).message;
      // A full repository: what the backup stored goes whatever a journal vouches for, or WAL
      // archiving into it stops too (and pg_wal fills on the server).
      const full = noSpaceLeft(e);
      // Kept for --resume when a journal vouches for some of it (this run's or the one it resumed).
      const resumable = !full && (writer.journaled > 0 || (resumed !== null && resumed.previous.size > 0));
      const undurable = `the record of backup ${id} reads complete, but it could not be made durable (${(e as Error).message})`;
      try {
        // The record says failed before anything goes: never a record reading complete over a removed set.
        await writeRecord(storage, record);
        if (notDurable) reporter.warn(`${undurable}: it is marked failed; check the repository's disk (dmesg), then take another backup`);
        if (resumable) reporter.warn(`backup ${id} failed; what it stored is kept: run pgpitr backup -j ${req.parallel?.jobs ?? 2}${type === 'full' ? '' : ` --type ${type}`} --compress-type ${req.compression} --resume to take it over (the same compression; a backup without --resume removes it)`);
      } catch (again) {
        // The repository may be what failed: the record then still says running, and reads as
        // interrupted (never restored), or, where it read back complete, may still say so.
        // Where it read back complete, or could not be read back at all, it may still read complete.
        if (notDurable || (committing && !readBack)) {
          reporter.warn(`the record of backup ${id} may read complete without being durable (${(e as Error).message}), and marking it failed failed too (${(again as Error).message}): once the disk is sound, take another backup, then remove this one with pgpitr expire --set ${id}`);
        }
      }
      // After a failed write of "complete", what the set stored stays (the write may land yet: an
      // object store's PUT retried), but for a full file system of this host, where the write
      // failed before its rename and the record read back says so.
      if (!resumable && (!committing || (full && readBackNotComplete))) {
        await removeStoredFiles(storage, dir).catch(() => {});
        if (full) reporter.warn(`backup ${id} failed: the repository is full; what it had stored is removed so that WAL archiving into it can go on`);
      }
      throw e;
    }
  } finally {
    await lock.release();
  }
}

/** The backup a --resume takes over, with its journal; null (said why) when none can be. */
async function findResumable(
  req: RepoBackupRequest,
  records: BackupRecord[],
  reporter: BackupReporter,
  alive: (r: BackupRecord) => boolean,
  server: ServerOfStanza,
): Promise<{ from: BackupRecord; previous: Map<string, SetJournalEntry>; lastBatch: number } | null> {
  const notResumed = (why: string) => {
    reporter.warn(`nothing to resume: ${why}; taking a new backup`);
    return null;
  };
  const choice = chooseResumable(records, { systemIdentifier: req.stanza.system_identifier, compression: req.compression, alive });
  if ('reason' in choice) return notResumed(choice.reason);
  const from = choice.resume;
  // A diff or incr with no backup to build on is taken full (and recorded so): asked for again,
  // that full is what it resumes, as long as there is still nothing to build on.
  let fellBack = false;
  if (from.type === 'full' && req.type !== undefined && req.type !== 'full') {
    const prior = choosePrior(records, req.type, { ...server, compression: req.compression });
    if ('reason' in prior) {
      reporter.warn(`no backup to take ${aBackup(req.type)} from: ${prior.reason}; backup ${from.id}, taken full for that reason, is resumed`);
      fellBack = true;
    }
  }
  if (from.type !== (req.type ?? 'full') && !fellBack) return notResumed(`backup ${from.id} is ${aBackup(from.type)}, this one ${aBackup(req.type ?? 'full')} (only a backup of its type resumes it: what it stored is removed now, as by any backup that does not take it over)`);
  if (from.type !== 'full' && !records.some((r) => r.id === from.prior && r.state === 'complete')) return notResumed(`backup ${from.id} builds on backup ${String(from.prior)}, which is no longer a complete backup`);
  const problem = versionProblem(from, server.pgVersionNum);
  if (problem) return notResumed(problem);
  // Another role's server (the standby it was taken from promoted since: black-box run S): its files' times are another host's.
  if (from.backup_from !== null && from.backup_from !== server.backupFrom) return notResumed(`backup ${from.id} was taken from a ${from.backup_from}, the server is a ${server.backupFrom} now (promoted, or another server)`);
  const journal = await readSetJournal(req.repo.storage, backupDir(from.stanza, from.id));
  if (journal.ignored > 0) reporter.warn(`backup ${from.id}: ${journal.ignored} damaged batch(es) of its copy journal, or of an older format, ignored (the files they name are copied again)`);
  if (journal.entries.size === 0) return notResumed(`backup ${from.id} journaled no stored file (a -j backup journals its stored files in batches, and none was complete when it stopped; one stream journals none)`);
  return { from, previous: journal.entries, lastBatch: journal.lastBatch };
}

/**
 * A backup dated after this host's clock (taken while a clock ran ahead): said, as pgBackRest
 * refuses such a label. Retention does not count it (retention.ts), so that the backups taken now
 * are ordered among themselves and never expired in its favour; a diff or incr is not built on it
 * (prior-choice.ts).
 */
function warnDatedAhead(records: readonly BackupRecord[], now: Date, reporter: BackupReporter): void {
  for (const r of records) {
    if (r.damaged || r.state !== 'complete' || !r.stop_time || Date.parse(r.stop_time) <= now.getTime() + DATED_AHEAD_SLACK_MS) continue;
    reporter.warn(`backup ${r.id} is dated ${r.stop_time}, later than this host's clock (${now.toISOString()}): a clock that ran ahead when it was taken, or set back since; retention does not count it (remove it with pgpitr expire --set ${r.id} if its times are wrong)`);
  }
}
