// What the signal files in a data directory say about the recovery running
// there (PostgreSQL 12 and later): read by archive-get, which PostgreSQL runs
// in the data directory.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { parseSegmentFileName, segmentStart } from './lsn.js';
import { parseWalLongPageHeader, segmentNameMismatch } from './wal-page-header.js';
import { WalRecordScanner } from './wal-records.js';
import { join } from 'node:path';
import { RECOVERY_SIGNAL, STANDBY_SIGNAL_FILE } from './restore-settings.js';
import { controlCheckpointTimeline } from './control-file.js';

/**
 * Whether the data directory `dir` is in a recovery that ends when the archive does: recovery.signal
 * without standby.signal (a standby never ends recovery: a file not found sends it to streaming).
 */
export function endsRecoveryAtArchiveEnd(dir: string): boolean {
  return existsSync(join(dir, RECOVERY_SIGNAL)) && !existsSync(join(dir, STANDBY_SIGNAL_FILE));
}

/**
 * Whether a standby (standby.signal in data directory `dir`) that asks for WAL file `name` and meets
 * a repository fault may be told "not found" rather than be stopped: it never ends recovery on that
 * answer, but streams (primary_conninfo) or asks again later. A segment may. A history file may when
 * PostgreSQL then reads what it needs from pg_wal: a timeline newer than the data directory's (it
 * looks for a newer timeline to follow, or, promoted, for a free timeline ID: a taken one is found
 * when its history file is archived, which archive-push refuses over other contents), or one whose
 * file pg_wal holds (the timeline it follows). Not the history of the timeline it follows with no
 * copy in pg_wal: at a start it needs it to read WAL of older timelines, and once promoted it copies
 * its ancestry from it (told "not found", it would write a new timeline's history without it).
 */
export function standbyMayWaitOut(dir: string, name: string): boolean {
  if (!existsSync(join(dir, STANDBY_SIGNAL_FILE))) return false;
  if (/^[0-9A-F]{24}$/.test(name)) return true;
  const history = /^([0-9A-F]{8})\.history$/.exec(name);
  if (!history) return false;
  const own = controlCheckpointTimeline(dir);
  return (own !== null && parseInt(history[1]!, 16) > own) || existsSync(join(dir, 'pg_wal', name));
}

/**
 * Whether the data directory `dir` holds WAL segment `name` in pg_wal with its WAL going on into the
 * next segment (recovery reads it there when the archive has none): a segment whose WAL ends inside
 * it is not one, such as the restored stop segment of a backup that holds its WAL (WAL up to the
 * stop, then zeros) or a copy cut short; a segment closed by a WAL switch is (its rest is zeros too).
 */
export function walFileInDataDir(dir: string, name: string, crc32c: (chunk: Uint8Array, crc?: number) => number): boolean {
  let data: Buffer;
  try {
    data = readFileSync(join(dir, 'pg_wal', name));
  } catch {
    return false;
  }
  const h = parseWalLongPageHeader(data);
  const seg = h === null ? null : parseSegmentFileName(name.slice(0, 24), h.segmentSize);
  if (h === null || seg === null || data.length !== h.segmentSize || segmentNameMismatch(name, h, h.segmentSize) !== null) return false;
  return new WalRecordScanner({ crc32c, onRestorePoint: () => {} }).segment(segmentStart(seg.segNo, h.segmentSize), data) === 'next';
}

/**
 * Whether a recovery is still to run, or running, in data directory `dir` (recovery.signal or
 * standby.signal there: PostgreSQL removes recovery.signal when recovery ends), or has ended with a
 * promotion whose timeline history file is not archived yet (its .ready in pg_wal/archive_status:
 * until it is, the archive does not show the new timeline, and a retention policy would judge
 * branches by the old one); null when this process cannot tell: not allowed to look, or no such
 * directory (removed, or not visible from here: another mount namespace, a service's private /tmp).
 * 'recovery': recovery.signal alone, a recovery that ends (not started yet, or running).
 */
export function recoveryPending(dir: string): boolean | 'recovery' | null {
  try {
    if (!statSync(dir).isDirectory()) return null;
  } catch {
    return null;
  }
  const standby = signalPresent(dir, STANDBY_SIGNAL_FILE);
  const recovery = signalPresent(dir, RECOVERY_SIGNAL);
  if (standby === null || recovery === null) return null;
  if (standby) return true;
  if (recovery) return 'recovery';
  try {
    return readdirSync(join(dir, 'pg_wal', 'archive_status')).some((n) => /^[0-9A-F]{8}\.history\.ready$/.test(n));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? false : null;
  }
}

/** Whether signal file `name` is in `dir`; null when that cannot be told (not allowed to look). */
function signalPresent(dir: string, name: string): boolean | null {
  try {
    statSync(join(dir, name));
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? false : null;
  }
}
