// `pgpitr info`: per stanza, its backups (a record whose process is gone reads
// as interrupted), the archive's first and last segment per timeline, gaps,
// the last file archived and when, WAL dropped by the asynchronous
// archive-push queue limit, stale temporary files left by interrupted pushes or commands;
// which complete backups can be restored (and why not), and the recovery
// windows: from the end of a restorable backup to the end of the unbroken WAL
// after it (restore/recovery-window.ts).
// The report as data; cli/commands/info.ts prints it as text or JSON.

import { staleTempsBeyondArchive } from '../repo/stale-temps.js';
import { PgpitrError } from '../common/errors.js';
import type { ErrorCode } from '../common/errors.js';
import { checkRepository, listStanzas, readStanza } from '../repo/stanza.js';
import { scanArchive } from '../repo/archive-store.js';
import { summarizeArchive } from '../repo/archive-summary.js';
import type { ArchiveSummary } from '../repo/archive-summary.js';
import { listDrops } from '../repo/drops.js';
import type { DropRecord } from '../repo/drops.js';
import { listRecords } from '../repo/backup-set/record.js';
import { liveLockHolder } from '../repo/lock.js';
import { backupLockPath } from '../repo/layout.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import type { Repository } from '../repo/repository.js';
import { stanzaReach } from './stanza-reach.js';
import { liveLeases } from '../repo/restore-lease.js';
import { recoveryPending } from '../postgres/recovery-signals.js';
import { insideExpiredHole, readExpiredHoles } from '../repo/expired-holes.js';
import type { RecoveryWindow } from '../restore/recovery-window.js';
import type { TimelineGap } from '../restore/timeline-gaps.js';

export interface StanzaReport {
  stanza: string;
  system_identifier: string;
  pg_version: number;
  backups: BackupSummary[];
  archive: ArchiveSummary;
  /** Segments missing where a timeline's WAL meets its ancestor's (none of one timeline's gaps shows them). */
  timeline_gaps: TimelineGap[];
  /** Oldest first; none when no backup can be restored, several when the archive has gaps. */
  recovery_windows: (Omit<RecoveryWindow, 'to' | 'withSet'> & { with_set: RecoveryWindow['withSet']; to: RecoveryWindow['to'] & { archived_at: string | null } })[];
  /**
   * Restore's defaults (no --set, the latest timeline) refuse every target: the newest timeline may
   * not be this cluster's present (latest-timeline.ts). `for_now`: until the newest timeline archives
   * again (an old primary's last segments after a failover). Null when they do not.
   */
  defaults_refused: { message: string; hint: string | null; for_now: boolean } | null;
  /** History files that could not be read (damaged, undecryptable), each with why. */
  unreadable_history_files: string[];
  /** WAL files stored with two contents (archive-get refuses them: recovery stops there). */
  conflicting_copies: string[];
  dropped_wal: DropRecord[];
  stale_temp_files: number;
}

export type BackupSummary = ReturnType<typeof backupSummary>;

/** A stanza info could not describe (its record unreadable, a listing that failed): said, the others still described. */
export interface StanzaFailure {
  stanza: string;
  error: string;
  code: ErrorCode;
}

/** One stanza (or, without `stanza`, every stanza) of the repository; with `set`, that backup only. */
export async function repositoryInfo(repo: Repository, opts: { stanza?: string | undefined; set?: string | undefined }): Promise<(StanzaReport | StanzaFailure)[]> {
  await checkRepository(repo);
  const names = opts.stanza ? [opts.stanza] : await listStanzas(repo);
  const report: (StanzaReport | StanzaFailure)[] = [];
  for (const name of names) {
    // Every stanza asked for by name fails the command; listing them all, one that cannot be read is
    // said and the others described (monitoring reading info -o json is not blinded by one).
    try {
      await describeStanza(name);
    } catch (e) {
      if (opts.stanza !== undefined || !(e instanceof PgpitrError)) throw e;
      report.push({ stanza: name, error: e.message, code: e.code });
    }
  }
  return report;

  async function describeStanza(name: string): Promise<void> {
    const stanza = await readStanza(repo, name);
    const scan = await scanArchive(repo, name);
    const records = await listRecords(repo.storage, name);
    const reach = await stanzaReach(repo, name, stanza.wal_segment_size, scan.files, records);
    // A run of another host cannot be looked at here: it is alive only while the stanza's backup
    // lock names it (backup holds it throughout; a run killed leaves a record saying "running").
    const holder = records.some((r) => r.state === 'running') ? await liveLockHolder(repo.storage, backupLockPath(name)).catch(() => null) : null;
    // The holder was judged alive as locks are (another pid namespace, a container of the same host
    // name, is taken for alive there): the record's process is the one holding it when host, pid
    // and, where both say, start time match (not judged again by pid here, in this namespace).
    const running = (r: BackupRecord) => holder !== null && holder.host === r.process.host && holder.pid === r.process.pid && (holder.start_ticks === undefined || r.process.start_ticks === null || holder.start_ticks === r.process.start_ticks);
    // Restores' leases (repo/restore-lease.ts): what expire keeps for a restore, and says so here too.
    const leases = await liveLeases(repo.storage, name, { recoveryPending }).catch(() => []);
    const restoring = (r: BackupRecord) => leases.filter((l) => l.backup === r.id).map((l) => l.holder);
    const ids = new Set(records.map((r) => r.id));
    const backups = records.filter((r) => opts.set === undefined || r.id === opts.set).map((r) => backupSummary(r, reach.problems.get(r.id), running, restoring(r), ids));
    const archivedAt = (segment: string) => {
      const f = scan.files.find((x) => x.name === segment);
      return f ? new Date(f.mtimeMs).toISOString() : null;
    };
    // What expire left out between standalone backups is marked, not hidden: a restore cannot cross it either.
    const holes = await readExpiredHoles(repo, name).catch(() => []);
    const mark = <G extends { from: string; to: string }>(g: G): G => (insideExpiredHole(holes, g, stanza.wal_segment_size) ? { ...g, left_by_expire: true } : g);
    const archive = summarizeArchive(scan.files, stanza.wal_segment_size);
    report.push({
      stanza: name,
      system_identifier: stanza.system_identifier,
      pg_version: stanza.pg_major,
      backups,
      archive: { ...archive, timelines: archive.timelines.map((t) => ({ ...t, gaps: t.gaps.map(mark) })) },
      timeline_gaps: reach.timelineGaps.map(mark),
      recovery_windows: reach.windows.map(({ withSet, ...w }) => ({ ...w, with_set: withSet, to: { ...w.to, archived_at: archivedAt(w.to.segment) } })),
      defaults_refused: reach.latestDoubt ? { message: reach.latestDoubt.message, hint: reach.latestDoubt.hint ?? null, for_now: reach.latestDoubt.transient } : null,
      unreadable_history_files: reach.unreadable,
      conflicting_copies: reach.conflicting,
      dropped_wal: await listDrops(repo, name),
      stale_temp_files: scan.staleTemps.length + (await staleTempsBeyondArchive(repo, name, { top: false })).length,
    });
  }
}

/**
 * A backup as info shows it: a record left "running" by a process that is gone reads as
 * interrupted; a complete one says whether it can be restored now (`problem`: why not).
 */
function backupSummary(r: BackupRecord, problem: string | null | undefined, running: (r: BackupRecord) => boolean, restoring: string[], ids: Set<string>) {
  return {
    id: r.id,
    type: r.type,
    /** diff and incr: the backup it was compared with, and the backups it takes unchanged files from. */
    prior: r.prior ?? null,
    /** The prior was expired since: a kept backup keeps only the backups it takes files from (references). */
    prior_expired: typeof r.prior === 'string' && !ids.has(r.prior),
    references: r.references ?? [],
    state: r.state === 'running' && !running(r) ? 'interrupted' : r.state,
    /** Its record (backup.json) cannot be read: state, times and the rest are not known (error says why). */
    record_damaged: r.damaged === true,
    restorable: problem === null,
    problem: problem ?? (r.damaged === true ? `its record cannot be read: ${r.error ?? 'damaged'}` : notComplete(r, running)),
    start_time: r.start_time,
    stop_time: r.stop_time,
    timeline: r.timeline,
    start_lsn: r.start_lsn,
    stop_lsn: r.stop_lsn,
    wal: { first: r.start_wal, last: r.stop_wal, source: r.wal },
    size: r.size,
    stored_size: r.stored_size,
    files: r.file_count,
    pg_version_num: r.pg_version_num,
    backup_from: r.backup_from,
    databases: r.databases,
    annotations: r.annotations,
    /** The page checksum failures the backup met in the source (damaged pages, stored as they were). */
    page_checksum_failures: r.page_checksum_failures ?? [],
    pinned: r.pinned,
    /** What the pin keeps besides the backup: full (the WAL after it too) or standalone; null when not pinned. */
    pin_target: r.pinned ? (r.pin_target ?? 'full') : null,
    /** The restores holding it (each its holder, as expire names it): expire keeps it meanwhile. */
    restoring,
    error: r.error,
  };
}

/** Why a backup that is not complete cannot be restored, for `problem` (null: complete, or running). */
function notComplete(r: BackupRecord, running: (r: BackupRecord) => boolean): string | null {
  if (r.state === 'failed') return `it failed: ${r.error ?? 'no error recorded'}`;
  if (r.state === 'running' && !running(r)) return 'it was interrupted (its process is gone): the next backup removes what it stored';
  return null;
}
