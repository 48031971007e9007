// Which backup a diff or incr backup is compared with, pgBackRest's way: a diff
// with the newest complete full backup, an incr with the newest complete backup
// of any type. Only a backup of the same cluster and PostgreSQL version, whose
// record has the server's start time (server_start_time: backups of older
// pgpitr versions lack it), stored with the same compression, can be one; without one the backup is a full
// backup, and the caller says so.

import type { BackupRecord, BackupType } from '../../repo/backup-set/record.js';
import type { Storage } from '../../storage/storage.js';
import type { PriorSet } from '../../repo/backup-set/writer.js';
import type { ManifestFile } from '../../repo/backup-set/manifest.js';
import { backupDir } from '../../repo/backup-set/record.js';
import { BackupSetReader } from '../../repo/backup-set/reader.js';

export type PriorChoice = { prior: BackupRecord } | { reason: string };

/** records: oldest first, as listRecords gives them. */
export function choosePrior(
  records: BackupRecord[],
  type: Exclude<BackupType, 'full'>,
  cluster: { systemIdentifier: string; pgVersionNum: number; compression: string },
): PriorChoice {
  const wanted = type === 'diff' ? 'full backup' : 'backup';
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.state !== 'complete' || (type === 'diff' && r.type !== 'full')) continue;
    if (r.system_identifier !== cluster.systemIdentifier) return { reason: `the newest complete ${wanted}, ${r.id}, is of another cluster` };
    if (r.pg_version_num !== cluster.pgVersionNum) return { reason: `the newest complete ${wanted}, ${r.id}, is of PostgreSQL ${r.pg_version_num}, the server runs ${cluster.pgVersionNum}` };
    // A set's stored files are all of one compression (the manifest's), the ones it takes from another set too.
    if (r.compression !== cluster.compression) return { reason: `the newest complete ${wanted}, ${r.id}, is compressed with ${r.compression}, this backup with ${cluster.compression}` };
    if (!r.server_start_time) return { reason: `the newest complete ${wanted}, ${r.id}, was taken by an older pgpitr, which did not record the server's start time` };
    return { prior: r };
  }
  return { reason: `the stanza has no complete ${wanted}` };
}

/** The prior backup's files and time limit, for BackupSetWriter (its manifest is read now). */
export async function loadPrior(storage: Storage, prior: BackupRecord): Promise<PriorSet> {
  const reader = await BackupSetReader.open(storage, backupDir(prior.stanza, prior.id));
  const files = new Map<string, ManifestFile>();
  for (const f of reader.manifest.files) files.set(f.path, f);
  return { id: prior.id, files, modifiedBefore: Math.floor(Date.parse(prior.server_start_time!) / 1000) - 1 };
}
