// `pgpitr info`: per stanza, its backups (a record whose process is gone reads
// as interrupted), the archive's first and last segment per timeline, gaps,
// the last file archived and when, WAL dropped by the asynchronous
// archive-push queue limit, stale temporary files left by interrupted pushes.
// The report as data; cli/commands/info.ts prints it as text or JSON.

import { PgpitrError } from '../common/errors.js';
import { checkRepository, listStanzas, readStanza } from '../repo/stanza.js';
import { scanArchive } from '../repo/archive-store.js';
import { summarizeArchive } from '../repo/archive-summary.js';
import type { ArchiveSummary } from '../repo/archive-summary.js';
import { listDrops } from '../repo/drops.js';
import type { DropRecord } from '../repo/drops.js';
import { listRecords, recordProcessAlive } from '../repo/backup-set/record.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import type { Repository } from '../repo/repository.js';

export interface StanzaReport {
  stanza: string;
  system_identifier: string;
  pg_version: number;
  backups: BackupSummary[];
  archive: ArchiveSummary;
  dropped_wal: DropRecord[];
  stale_temp_files: number;
}

export type BackupSummary = ReturnType<typeof backupSummary>;

/** One stanza (or, without `stanza`, every stanza) of the repository; with `set`, that backup only. */
export async function repositoryInfo(repo: Repository, opts: { stanza?: string | undefined; set?: string | undefined }): Promise<StanzaReport[]> {
  await checkRepository(repo);
  const names = opts.stanza ? [opts.stanza] : await listStanzas(repo);
  const report: StanzaReport[] = [];
  for (const name of names) {
    const stanza = await readStanza(repo, name);
    const scan = await scanArchive(repo, name);
    const backups = (await listRecords(repo.storage, name)).filter((r) => opts.set === undefined || r.id === opts.set).map(backupSummary);
    report.push({
      stanza: name,
      system_identifier: stanza.system_identifier,
      pg_version: stanza.pg_major,
      backups,
      archive: summarizeArchive(scan.files, stanza.wal_segment_size),
      dropped_wal: await listDrops(repo, name),
      stale_temp_files: scan.staleTemps.length,
    });
  }
  if (opts.set !== undefined && report.every((r) => r.backups.length === 0)) {
    throw new PgpitrError('ERR_NOT_FOUND', `backup "${opts.set}" does not exist`, { hint: 'pgpitr info without --set lists the backups' });
  }
  return report;
}

/** A backup as info shows it: a record left "running" by a process that is gone reads as interrupted. */
function backupSummary(r: BackupRecord) {
  return {
    id: r.id,
    type: r.type,
    /** diff and incr: the backup it was compared with, and the backups it takes unchanged files from. */
    prior: r.prior ?? null,
    references: r.references ?? [],
    state: r.state === 'running' && !recordProcessAlive(r) ? 'interrupted' : r.state,
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
    pinned: r.pinned,
    error: r.error,
  };
}
