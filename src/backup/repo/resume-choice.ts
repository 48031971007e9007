// Which backup `pgpitr backup --resume` takes over, decided as pgBackRest
// does: only the stanza's newest backup, and only when it ended without
// completing — failed, or interrupted (its record says "running" and its
// process is gone) — and was taken of the same cluster (system identifier),
// by the same PostgreSQL version, with the same compression (its stored
// objects are kept as they are). Anything else is a reason not to resume,
// said to the user; the backup is then taken afresh (what was asked for is a
// backup; --resume only saves time).

import type { BackupRecord } from '../../repo/backup-set/record.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';

export type ResumeChoice = { resume: BackupRecord } | { reason: string };

export interface ResumeWanted {
  systemIdentifier: string;
  compression: CompressionAlgorithm | 'none';
  alive(r: BackupRecord): boolean;
}

/** The first checks, from the records alone (oldest first, as listRecords gives them). */
export function chooseResumable(records: BackupRecord[], want: ResumeWanted): ResumeChoice {
  const newest = records[records.length - 1];
  if (!newest) return { reason: 'the stanza has no backup yet' };
  const id = `backup ${newest.id}`;
  if (newest.state === 'complete') return { reason: `the newest backup, ${newest.id}, is complete` };
  if (newest.state === 'running' && want.alive(newest)) return { reason: `${id} is still running (pid ${newest.process.pid} on ${newest.process.host})` };
  if (newest.system_identifier !== want.systemIdentifier) {
    return { reason: `${id} is of another cluster (system identifier ${newest.system_identifier || 'unknown'}, the stanza's is ${want.systemIdentifier})` };
  }
  if (newest.compression !== want.compression) return { reason: `${id} was stored with compression ${newest.compression}, this backup uses ${want.compression}` };
  return { resume: newest };
}

/** The check that needs the server: the version the backup was taken from. */
export function versionProblem(r: BackupRecord, serverVersionNum: number): string | null {
  if (r.pg_version_num === serverVersionNum) return null;
  return `backup ${r.id} was taken from PostgreSQL ${r.pg_version_num || 'of an unknown version'}, the server now runs ${serverVersionNum}`;
}
