// Which backup a diff or incr backup is compared with, pgBackRest's way: a diff
// with the newest complete full backup, an incr with the newest complete backup
// of any type. A file is then taken from that backup when its size and
// modification time are unchanged (BackupSetWriter.unchanged), which holds only
// for the same files on the same clock. So the prior backup must be of this
// cluster and PostgreSQL version, stored with the same compression, recorded by
// a pgpitr that noted the server's start time, taken on the timeline the server
// is on now (a restore or a promotion since starts a new one: the files may be
// another history's, with the times the restore gave them) and from the same
// kind of server (primary or standby: another host, another clock), before the
// server's clock of now, and with every backup it takes files from still
// complete. Without one the backup is a full backup, and the caller says why.

import { PgpitrError } from '../../common/errors.js';
import type { BackupRecord, BackupType } from '../../repo/backup-set/record.js';
import type { Storage } from '../../storage/storage.js';
import type { PriorSet } from '../../repo/backup-set/writer.js';
import type { ManifestFile } from '../../repo/backup-set/manifest.js';
import { backupDir, referencesOf } from '../../repo/backup-set/record.js';
import { BackupSetReader } from '../../repo/backup-set/reader.js';
import { storedObjects } from '../../repo/backup-set/stored-objects.js';

export type PriorChoice = { prior: BackupRecord } | { reason: string };

/** What the server is now, from the caller's queries before the backup starts. */
export interface ServerNow {
  systemIdentifier: string;
  pgVersionNum: number;
  compression: string;
  timeline: number;
  backupFrom: 'primary' | 'standby';
  /** The server's clock (ms since the epoch). */
  clockMs: number;
}

/** "a diff backup", "an incr backup". */
export function aBackup(type: BackupType): string {
  return `${type === 'incr' ? 'an' : 'a'} ${type} backup`;
}

/** records: oldest first, as listRecords gives them. */
export function choosePrior(records: BackupRecord[], type: Exclude<BackupType, 'full'>, server: ServerNow): PriorChoice {
  const wanted = type === 'diff' ? 'full backup' : 'backup';
  const complete = new Set(records.filter((r) => r.state === 'complete').map((r) => r.id));
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.state !== 'complete' || (type === 'diff' && r.type !== 'full')) continue;
    const reason = priorProblem(r, server, complete, `the newest complete ${wanted}, ${r.id},`);
    return reason === null ? { prior: r } : { reason };
  }
  return { reason: `the stanza has no complete ${wanted}` };
}

/**
 * A diff or incr taken over by --resume builds on the prior backup its first run chose: what made
 * that one fit must still hold now (the server restored or promoted since, its clock set back).
 */
export function checkResumedPrior(resumed: BackupRecord, prior: BackupRecord, records: BackupRecord[], server: ServerNow): void {
  const complete = new Set(records.filter((r) => r.state === 'complete').map((r) => r.id));
  const reason = complete.has(prior.id) ? priorProblem(prior, server, complete, `its prior backup, ${prior.id},`) : `its prior backup, ${prior.id}, is no longer a complete backup`;
  if (reason !== null) {
    throw new PgpitrError('ERR_CHECK', `${aBackup(resumed.type)} ${resumed.id} cannot be resumed: ${reason}`, { hint: 'take a new backup without --resume (it removes what the interrupted one stored)' });
  }
}

/** Why `r` cannot be the prior backup of one taken from `server` now (`newest` names it in the reason); null when it can. */
function priorProblem(r: BackupRecord, server: ServerNow, complete: Set<string>, newest: string): string | null {
  if (r.system_identifier !== server.systemIdentifier) return `${newest} is of another cluster`;
  // A minor release rewrites no data file: only another major version (after pg_upgrade) is another start.
  if (Math.floor(r.pg_version_num / 10000) !== Math.floor(server.pgVersionNum / 10000)) return `${newest} is of PostgreSQL ${r.pg_version_num}, the server runs ${server.pgVersionNum}`;
  // A set's stored files are all of one compression (the manifest's), the ones it takes from another set too.
  if (r.compression !== server.compression) return `${newest} is compressed with ${r.compression}, this backup with ${server.compression}`;
  if (!r.server_start_time) return `${newest} was taken by an older pgpitr, which did not record the server's start time`;
  if (r.timeline !== server.timeline) return `${newest} was taken on timeline ${String(r.timeline)}, the server is on timeline ${server.timeline} (restored or promoted since)`;
  if (r.backup_from !== server.backupFrom) return `${newest} was taken from a ${String(r.backup_from)}, this one from a ${server.backupFrom}`;
  if (!(Date.parse(r.server_start_time) < server.clockMs)) return `${newest} started at ${r.server_start_time} by the server's clock, which now says ${new Date(server.clockMs).toISOString()}`;
  // A file is taken from the prior by its size and time: only while times never ran back across it.
  if (!r.server_stop_time) return `${newest} has no end time by the server's clock (it could not be asked when the backup ended), so a clock set back meanwhile could not be seen`;
  if (Date.parse(r.server_stop_time) < Date.parse(r.server_start_time)) return `${newest} ended at ${r.server_stop_time} by the server's clock, before it started at ${r.server_start_time} (the clock was set back while it ran)`;
  // Ended later than now: the clock was set back since, and times the prior recorded may come again for other contents.
  if (!(Date.parse(r.server_stop_time) <= server.clockMs)) return `${newest} ended at ${r.server_stop_time} by the server's clock, which now says ${new Date(server.clockMs).toISOString()} (set back since)`;
  const lost = referencesOf(r).find((id) => !complete.has(id));
  if (lost !== undefined) return `${newest} takes files from backup ${lost}, which is no longer a complete backup`;
  return null;
}

/**
 * The prior backup's files and time limit, for BackupSetWriter (its manifest is read now). Only
 * files whose stored bytes are still there (their object, or a bundle reaching their bytes, in
 * the set that holds them: one listing per set) are taken from it: one lost to a lifecycle rule
 * or by hand is stored again rather than referenced by a backup that could never restore it.
 */
export async function loadPrior(storage: Storage, prior: BackupRecord): Promise<PriorSet> {
  const reader = await BackupSetReader.open(storage, backupDir(prior.stanza, prior.id));
  const stored = await storedObjects(storage, prior.stanza, prior.id, reader);
  const files = new Map<string, ManifestFile>();
  let missing = 0;
  for (const f of reader.manifest.files) {
    if (stored.has(f)) files.set(f.path, f);
    else missing++;
  }
  return { id: prior.id, files, modifiedBefore: Math.floor(Date.parse(prior.server_start_time!) / 1000) - 1, missing };
}
