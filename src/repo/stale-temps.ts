// Temporary files beyond the WAL archive. Every repository file is written under a temporary name
// and renamed into place (on a store with directories: posix), so a command killed in between
// (stanza-create, expire, a lock, a restore point's index, a lease) leaves its temporary file, as
// a killed push does in the archive. archive-temp.ts says when one is stale; this finds them in the
// places other than the archive (which scanArchive covers) where repository files are written:
// the repository's top (marker, repository.lock), the stanza's top (record, backup.lock, expire's
// stamps), restore-points/ (recursively), restore-lease/, archive-drops/, receive-wal/, and the top
// of each backup set (its record and manifest; a killed backup's data/ goes with its set).
// Object storage writes whole objects and leaves no such names: nothing is listed there.

import { storageJoin } from '../storage/storage-path.js';
import { staleTemps } from './archive-temp.js';
import { dropsPath, RECEIVER_DIR, restoreLeasePath, restorePointIndexPath, stanzaPath } from './layout.js';
import type { Repository } from './repository.js';

/**
 * The storage paths of the stale temporary files outside the stanza's archive; with `top`, the
 * repository's own too (check, which removes them; info leaves them out, or every stanza would
 * count them). Best effort: a directory this user cannot list (receive-wal's, another user's) is
 * passed by, never a failure of the command.
 */
export async function staleTempsBeyondArchive(repo: Repository, stanza: string, o: { top: boolean }): Promise<string[]> {
  if (!repo.storage.features.directories) return [];
  const out: string[] = [];
  const look = async (dir: string, recursive = false) => {
    const entries = await repo.storage.list(dir, { recursive }).catch(() => []);
    out.push(...staleTemps(dir, entries));
  };
  if (o.top) await look('');
  await look(stanzaPath(stanza));
  await look(restorePointIndexPath(stanza), true);
  await look(restoreLeasePath(stanza));
  await look(dropsPath(stanza));
  await look(storageJoin(stanzaPath(stanza), RECEIVER_DIR));
  const backups = storageJoin(stanzaPath(stanza), 'backup');
  for (const set of await repo.storage.list(backups, { detail: false }).catch(() => [])) {
    if (set.type === 'directory') await look(storageJoin(backups, set.name));
  }
  return out;
}
