// Removal for a delta restore (what the backup does not hold, an old pg_wal or tablespace
// entry replaced by a link) that never crosses into another file system: Node's recursive rm
// follows a directory into whatever is mounted inside it, an NFS share mounted under the data
// directory or a disk under a directory the backup does not hold. Whatever is mounted stays,
// and so do the directories above it.

import { promises as fsp } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { withDir } from './anchored-dir.js';

/**
 * Removes `path` (`st`: its lstat) and what is below it on its own file system; true when it is
 * gone, false when something mounted below it kept it (and the directories leading there). `at`:
 * the path to reach it by (anchored-dir.ts: through its open parent), `path` what messages show.
 * A directory is walked through itself, opened without following a link.
 */
export async function removeWithin(path: string, st: Stats, at = path): Promise<boolean> {
  try {
    if (!st.isDirectory()) {
      await fsp.rm(at, { force: true });
      return true;
    }
    let whole = true;
    await withDir(at, path, false, async (dir) => {
      for (const name of await fsp.readdir(dir.at())) {
        const below = await fsp.lstat(dir.at(name)).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return null;
          throw e;
        });
        if (below === null) continue;
        // A mount point: another file system's root, never removed from here.
        if (below.dev !== st.dev || !(await removeWithin(join(path, name), below, dir.at(name)))) whole = false;
      }
    });
    if (whole) await fsp.rmdir(at);
    return whole;
  } catch (e) {
    if (e instanceof PgpitrError) throw e; // said where, below
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      throw new PgpitrError('ERR_TARGET', `"${path}" became a link (or a file) while the restore removed what the backup does not hold there: nothing was removed through it`, { hint: 'something else writes in the target directory: stop it, then restore again' });
    }
    throw storageError('remove', path, e);
  }
}
