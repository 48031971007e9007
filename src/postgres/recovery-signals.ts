// What the signal files in a data directory say about the recovery running
// there (PostgreSQL 12 and later): read by archive-get, which PostgreSQL runs
// in the data directory.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RECOVERY_SIGNAL, STANDBY_SIGNAL_FILE } from './restore-settings.js';

/**
 * Whether the data directory `dir` is in a recovery that ends when the archive does: recovery.signal
 * without standby.signal (a standby never ends recovery: a file not found sends it to streaming).
 */
export function endsRecoveryAtArchiveEnd(dir: string): boolean {
  return existsSync(join(dir, RECOVERY_SIGNAL)) && !existsSync(join(dir, STANDBY_SIGNAL_FILE));
}

/** Whether the data directory `dir` holds WAL file `name` in pg_wal (recovery reads it there when the archive has none). */
export function walFileInDataDir(dir: string, name: string): boolean {
  return existsSync(join(dir, 'pg_wal', name));
}

/**
 * Whether a recovery is still to run, or running, in data directory `dir` (recovery.signal or
 * standby.signal there: PostgreSQL removes recovery.signal when recovery ends), or has ended with a
 * promotion whose timeline history file is not archived yet (its .ready in pg_wal/archive_status:
 * until it is, the archive does not show the new timeline, and a retention policy would judge
 * branches by the old one); null when this process cannot tell: not allowed to look, or no such
 * directory (removed, or not visible from here: another mount namespace, a service's private /tmp).
 */
export function recoveryPending(dir: string): boolean | null {
  try {
    if (!statSync(dir).isDirectory()) return null;
  } catch {
    return null;
  }
  for (const name of [RECOVERY_SIGNAL, STANDBY_SIGNAL_FILE]) {
    try {
      statSync(join(dir, name));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    }
  }
  try {
    return readdirSync(join(dir, 'pg_wal', 'archive_status')).some((n) => /^[0-9A-F]{8}\.history\.ready$/.test(n));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? false : null;
  }
}
