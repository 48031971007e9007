// Backup sets without a record (backup.json). A backup writes its record before anything
// else and its manifest last of its files, and expire marks a set it removes (EXPIRING_NAME)
// before it removes the record. So a set without a record is one of two things:
// - what an interrupted expire left: its marker is there, or no manifest (a set expire began to
//   remove before the marker existed, or a backup's directory that never got that far): expire
//   removes it, under the enforced backup lock;
// - a stored backup that lost its record (a hand, a lifecycle rule, a partial copy of the
//   repository): its manifest and data are there, and copying its record back saves it (a diff or
//   incr: while the backups it takes files from are still there; expire keeps those only for
//   backups with a record). Expire keeps it and says so; verify reports it; `expire --set=ID`
//   removes it when asked.

import type { Storage } from '../../storage/storage.js';
import { storageJoin } from '../../storage/storage-path.js';
import { MANIFEST_NAME } from './manifest.js';
import { BACKUP_ID, backupDir, RECORD_NAME } from './record.js';
import type { BackupRecord } from './record.js';

/** Written into a set, durably, before expire removes its record. */
export const EXPIRING_NAME = 'expiring';

export interface UnrecordedSet {
  id: string;
  /** What an interrupted expire left (marked, or no manifest), not a backup that lost its record. */
  leftover: boolean;
}

/** The sets of the stanza's backup directory that have no record (`records`: those listed with one). */
export async function unrecordedSets(storage: Storage, stanza: string, records: readonly BackupRecord[]): Promise<UnrecordedSet[]> {
  const recorded = new Set(records.map((r) => r.id));
  const out: UnrecordedSet[] = [];
  for (const e of await storage.list(storageJoin(stanza, 'backup'))) {
    if (e.type !== 'directory' || !BACKUP_ID.test(e.name) || recorded.has(e.name)) continue;
    const set = await unrecordedSet(storage, stanza, e.name);
    if (set !== null) out.push(set);
  }
  return out;
}

/** One set judged as unrecordedSets judges it; null when it has its record (written since a listing: a backup that just began). */
export async function unrecordedSet(storage: Storage, stanza: string, id: string): Promise<UnrecordedSet | null> {
  const dir = backupDir(stanza, id);
  if ((await storage.info(storageJoin(dir, RECORD_NAME))) !== null) return null;
  const marked = (await storage.info(storageJoin(dir, EXPIRING_NAME))) !== null;
  return { id, leftover: marked || (await storage.info(storageJoin(dir, MANIFEST_NAME))) === null };
}

/**
 * Marks a set as being removed by expire (durably: the record goes next). Not atomic: only its
 * being there counts, and an atomic write killed midway would leave a temporary file in a set
 * still recorded (one the next expire, which removes the set, would not even need).
 */
export async function markExpiring(storage: Storage, stanza: string, id: string): Promise<void> {
  await storage.write(storageJoin(backupDir(stanza, id), EXPIRING_NAME), Buffer.from(JSON.stringify({ expiring: new Date().toISOString() }) + '\n'), { atomic: false });
}

/** Takes the mark back (the record could not be removed). */
export async function unmarkExpiring(storage: Storage, stanza: string, id: string): Promise<void> {
  await storage.remove(storageJoin(backupDir(stanza, id), EXPIRING_NAME));
}

/** What expire says of a set it keeps because it lost its record. */
export function unrecordedKept(id: string): string {
  return `backup set ${id} has a manifest but no record (${RECORD_NAME}), and is kept: copy the record back from a copy of the repository (a diff or incr needs the backups it takes files from too, which expire does not keep for a set without a record), or remove the set with pgpitr expire --set=${id}`;
}
