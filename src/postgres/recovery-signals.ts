// What the signal files in a data directory say about the recovery running
// there (PostgreSQL 12 and later): read by archive-get, which PostgreSQL runs
// in the data directory.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { parseSegmentFileName, segmentStart } from './lsn.js';
import { parseWalLongPageHeader, segmentNameMismatch } from './wal-page-header.js';
import { WalRecordScanner } from './wal-records.js';
import { join } from 'node:path';
import { RECOVERY_SIGNAL, STANDBY_SIGNAL_FILE } from './restore-settings.js';

/**
 * Whether the data directory `dir` is in a recovery that ends when the archive does: recovery.signal
 * without standby.signal (a standby never ends recovery: a file not found sends it to streaming).
 */
export function endsRecoveryAtArchiveEnd(dir: string): boolean {
  return existsSync(join(dir, RECOVERY_SIGNAL)) && !existsSync(join(dir, STANDBY_SIGNAL_FILE));
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
