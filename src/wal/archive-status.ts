// PostgreSQL's archive queue: pg_wal/archive_status/<file>.ready marks a WAL
// file the archiver still has to archive; it becomes <file>.done once
// archive_command succeeded. Listed in the archiver's own order: timeline
// history files first, then by name (oldest segment first).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../common/errors.js';

/** Names of the WAL files marked ready for archiving, in the order the archiver takes them. */
export function listReadyWalFiles(pgWal: string): string[] {
  const statusDir = join(pgWal, 'archive_status');
  let entries: string[];
  try {
    entries = readdirSync(statusDir);
  } catch (e) {
    throw storageError('read archive status directory', statusDir, e);
  }
  const ready = entries.filter((e) => e.endsWith('.ready')).map((e) => e.slice(0, -'.ready'.length));
  const history = (n: string) => (n.endsWith('.history') ? 0 : 1);
  return ready.sort((a, b) => history(a) - history(b) || (a < b ? -1 : a > b ? 1 : 0));
}
