// A backup's record (backup.json in its set's directory): what the catalog
// knows of one backup. Written "running" when the backup starts (with what
// identifies the process that runs it), and replaced, atomically and last of
// all, by "complete" once the manifest and the WAL the backup needs are
// stored; "failed" when it fails. A record saying "running" whose process is
// gone is an interrupted backup. Only complete backups are ever restored.
//
// A differential or incremental backup stores only the files that changed
// since its prior backup; its manifest names, for every other file, the backup
// whose set holds the stored bytes (manifest.ts, reference). Such a backup is
// usable only with every backup in `references`: expire keeps them with it,
// restore and verify check that they are there.

import { hostname } from 'node:os';
import { DamagedContentError, PgpitrError } from '../../common/errors.js';
import { sameProcessAlive } from '../../common/process-identity.js';
import type { Storage } from '../../storage/storage.js';
import { readAll } from '../../storage/storage.js';
import { objectAt, storageJoin } from '../../storage/storage-path.js';
import type { PinTarget } from '../retention.js';

export const RECORD_NAME = 'backup.json';

/** pgBackRest's three kinds: everything, what changed since the last full, what changed since the last backup. */
export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupRecord {
  format: 'pgpitr-backup';
  format_version: 1;
  id: string;
  type: BackupType;
  /** diff and incr: the backup this one was compared with (null for a full). Absent in older records: full. */
  prior?: string | null;
  /** diff and incr: every backup whose set holds stored files this one uses (its manifest's references). */
  references?: string[];
  /**
   * The server's clock when the backup started (before its checkpoint), from the server itself:
   * a later diff or incr takes a file from this backup only when the file was last modified
   * before that moment (its modification time is the server's clock too, whatever the clock of
   * the host pgpitr runs on). Absent in older records: no later backup takes files from them.
   */
  server_start_time?: string | null;
  /**
   * The server's clock once the backup had stopped (absent in records of older pgpitr): what a
   * target time is compared with, which is of the server's clock, where stop_time is this host's.
   */
  server_stop_time?: string | null;
  state: 'running' | 'complete' | 'failed';
  stanza: string;
  label: string;
  system_identifier: string;
  pg_version_num: number;
  timeline: number | null;
  start_lsn: string | null;
  stop_lsn: string | null;
  start_wal: string | null;
  stop_wal: string | null;
  start_time: string;
  stop_time: string | null;
  /** The next transaction ID to be assigned when the backup had ended (for --target-xid), when known. */
  stop_next_xid: string | null;
  /** The oldest transaction still running just before the backup started (for --target-xid: any below it had ended, out of its reach); absent in older records. */
  start_xmin?: string | null;
  backup_from: 'primary' | 'standby' | null;
  /** "archive": replay needs the stanza's WAL archive; "included": the set holds the WAL to consistency. */
  wal: 'archive' | 'included';
  compression: string;
  size: number | null;
  stored_size: number | null;
  file_count: number | null;
  /** size: null when the backup's role could not see it (no CONNECT on the database). */
  databases: { name: string; oid: number; size: number | null }[];
  /** The cluster's tablespaces by name (pg_tablespace, before the backup started): --tablespace-map NAME=PATH. Absent in older records. */
  tablespace_names?: { oid: number; name: string }[];
  /**
   * Whether WAL after the backup gives the image of every page it changes (selective restore
   * relies on it: backup/repo/page-image-facts.ts, restore/database-selection.ts). Absent in
   * older records: not known.
   */
  page_images?: PageImages;
  /**
   * The page checksum failures the backup met in the source, as the warnings named them (file,
   * block): the damaged pages are stored as they are, and restore brings them back. Absent: none.
   */
  page_checksum_failures?: string[];
  annotations: Record<string, string>;
  pinned: boolean;
  /** What the pin keeps besides the backup (retention.ts); absent: 'full'. */
  pin_target?: PinTarget;
  /** Who runs it: host, pid, the process's start time and the boot id (to tell a live run from a reused pid). */
  /** pid_ns: its pid namespace (absent in records of older pgpitr): a pid of another one means nothing here. */
  process: { host: string; pid: number; start_ticks: string | null; boot_id: string | null; pid_ns?: string | null };
  error: string | null;
  /** Set (never stored) on what listRecords gives for a record that cannot be parsed. */
  damaged?: boolean;
}

export interface PageImages {
  data_checksums: boolean;
  /** null: not known (a backup from a standby: the primary's setting counts). */
  wal_log_hints: boolean | null;
  /** null: not known (a backup from a standby whose role may not run pg_control_checkpoint()). */
  full_page_writes: boolean | null;
  /** Databases (oids) holding hash indexes, whose cleanup WAL changes a page without its image. Absent: not checked. */
  hash_index_databases?: number[];
  /** Databases (oids) that could not be checked for hash indexes. */
  unchecked_databases?: number[];
}

export function backupDir(stanza: string, id: string): string {
  return storageJoin(stanza, 'backup', id);
}

export async function writeRecord(storage: Storage, r: BackupRecord): Promise<void> {
  await storage.write(storageJoin(backupDir(r.stanza, r.id), RECORD_NAME), Buffer.from(JSON.stringify(r, null, 1) + '\n'));
}

export async function readRecord(storage: Storage, stanza: string, id: string): Promise<BackupRecord | null> {
  const path = storageJoin(backupDir(stanza, id), RECORD_NAME);
  let text: Buffer | null;
  try {
    text = await readAll(storage, path);
  } catch (e) {
    // Read, and failing to decrypt: damaged (a read that failed says nothing: thrown as it is).
    if (e instanceof DamagedContentError) throw new DamagedRecordError(e.message);
    throw e;
  }
  if (text === null) return null;
  try {
    const r = JSON.parse(text.toString()) as BackupRecord;
    if (r.format !== 'pgpitr-backup' || r.id !== id) throw new Error('not the record of this backup');
    return r;
  } catch (e) {
    throw new DamagedRecordError(`backup record ${objectAt(storage.location, path)} is damaged: ${(e as Error).message}`);
  }
}

/** A record that was read and is not a backup record (bad JSON, another backup's): not a failure to read it. */
export class DamagedRecordError extends PgpitrError {
  constructor(message: string) {
    super('ERR_STORAGE', message, {
      hint: 'that backup cannot be used; it is listed as failed, and expire keeps it: look at it (pgpitr verify), then remove it with pgpitr expire --set=ID (which takes along, or refuses for, any backup that needs it)',
    });
  }
}

/** Every backup of a stanza, oldest first (by start time, then id). Directories without a record are left out. */
export async function listRecords(storage: Storage, stanza: string): Promise<BackupRecord[]> {
  const entries = await storage.list(storageJoin(stanza, 'backup'));
  const ids = entries.map((e) => e.name).filter((n) => BACKUP_ID.test(n)).sort();
  const out: BackupRecord[] = [];
  for (const id of ids) {
    try {
      const r = await readRecord(storage, stanza, id);
      if (r) out.push(r);
    } catch (e) {
      // One damaged record must not hide the others: it is listed as failed (never restored, and
      // never expired: it may be a complete backup's). A record that could not be read (an I/O
      // error, object storage out of reach) is not known to be anything: the command fails.
      if (!(e instanceof DamagedRecordError)) throw e;
      out.push(damagedRecord(stanza, id, e.message));
    }
  }
  // Ids alone do not order a diff taken in the same second as its full ("D" sorts before "F").
  return out.sort((a, b) => (a.start_time < b.start_time ? -1 : a.start_time > b.start_time ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export const BACKUP_ID = /^\d{8}-\d{6}[FDI](?:_\d+)?$/;

const TYPE_LETTER: Record<BackupType, string> = { full: 'F', diff: 'D', incr: 'I' };

/** pgBackRest-style: 20261201-114500F (UTC; D for a diff, I for an incr); "_2" and on when that second is taken by any backup. */
export function newBackupId(now: Date, taken: Set<string>, type: BackupType = 'full'): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  const used = (suffix: string) => ['F', 'D', 'I'].some((l) => taken.has(`${stamp}${l}${suffix}`));
  const letter = TYPE_LETTER[type];
  if (!used('')) return `${stamp}${letter}`;
  for (let i = 2; ; i++) if (!used(`_${i}`)) return `${stamp}${letter}_${i}`;
}

/** The backups a backup needs besides itself (none for a full). */
export function referencesOf(r: BackupRecord): string[] {
  return r.references ?? [];
}

/**
 * How long a "running" record of another pid namespace (a container sharing the host name) is
 * taken to run, its pid meaning nothing here: a day, after which it is judged by the pid as
 * others are (a container killed mid-backup is not "running" until the host reboots).
 */
const FOREIGN_RUN_TRUST_MS = 24 * 3600_000;

/** Whether the backup a "running" record describes still runs (its process, not a reused pid). */
export function recordProcessAlive(r: BackupRecord, nowMs = Date.now()): boolean {
  const p = r.process;
  const recent = nowMs - Date.parse(r.start_time) < FOREIGN_RUN_TRUST_MS;
  return sameProcessAlive({ host: p.host, pid: p.pid, startTime: p.start_ticks, bootId: p.boot_id, pidNs: recent ? p.pid_ns : undefined }, hostname());
}

/** A backup's type as its id says (...F, ...D, ...I, with an optional _N after). */
export function typeOfId(id: string): BackupType {
  const letter = /^\d{8}-\d{6}([FDI])/.exec(id)?.[1];
  return letter === 'D' ? 'diff' : letter === 'I' ? 'incr' : 'full';
}

function damagedRecord(stanza: string, id: string, error: string): BackupRecord {
  return {
    format: 'pgpitr-backup', format_version: 1, id, type: typeOfId(id), state: 'failed', stanza, label: '', system_identifier: '',
    pg_version_num: 0, timeline: null, start_lsn: null, stop_lsn: null, start_wal: null, stop_wal: null,
    start_time: new Date(0).toISOString(), stop_time: null, stop_next_xid: null, backup_from: null, wal: 'archive',
    compression: 'none', size: null, stored_size: null, file_count: null, databases: [], annotations: {}, pinned: false,
    process: { host: '', pid: 0, start_ticks: null, boot_id: null }, error, damaged: true,
  };
}
