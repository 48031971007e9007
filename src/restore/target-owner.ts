// What a restore does to its target beside writing the backup's files: it
// holds a lock in the data directory while it writes (two restores into one
// directory would rewrite each other's files, and the first to finish would
// declare it ready while the other still writes), and, run as root, it gives
// what it wrote to the data directory's owner.

import { chownSync, lchownSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { withDirSync } from './anchored-dir.js';
import type { AnchoredDir } from './anchored-dir.js';
import { RepoLock } from '../repo/lock.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import { RESTORE_LOCK, isWalName } from './restore-target-dir.js';

export { RESTORE_LOCK };

export async function lockTarget(dir: string): Promise<RepoLock> {
  try {
    return await RepoLock.acquire(new PosixStorage(dir), RESTORE_LOCK, 'restore', undefined, `data directory "${dir}"`);
  } catch (e) {
    if (e instanceof PgpitrError && e.code === 'ERR_TARGET') {
      throw new PgpitrError('ERR_TARGET', `another restore is writing into "${dir}": ${e.message}`, {
        hint: `wait for it to finish; if that process no longer exists, remove ${join(dir, RESTORE_LOCK)}`,
      });
    }
    throw e;
  }
}

export interface Owner {
  uid: number;
  gid: number;
}

/** Run as root, restore gives the files to the data directory's owner (the server refuses files it does not own). */
export function rootOwnerFor(dir: string): Owner | null {
  if (process.getuid?.() !== 0) return null;
  const st = statSync(dir);
  return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
}

/**
 * A directory and everything under it (links themselves are left alone, never followed). Below
 * `dir` (which may be a link the user gave: a mount point), owners change with lchown through the
 * open directory (anchored-dir.ts): the server's user owns these directories, and an entry swapped
 * for a link, or a directory swapped for a link to /etc, must not hand root's files to that user.
 */
export function chownTree(dir: string, o: Owner, only?: (name: string) => boolean): void {
  chownSync(dir, o.uid, o.gid);
  withDirSync(dir, dir, true, (d) => chownBelow(d, o, only));
}

function chownBelow(dir: AnchoredDir, o: Owner, only?: (name: string) => boolean): void {
  for (const name of readdirSync(dir.at())) {
    if (only && !only(name)) continue;
    const st = lstatSync(dir.at(name), { throwIfNoEntry: false });
    if (st === undefined || st.isSymbolicLink()) continue;
    lchownSync(dir.at(name), o.uid, o.gid);
    if (!st.isDirectory()) continue;
    try {
      withDirSync(dir.at(name), join(dir.path, name), false, (d) => chownBelow(d, o));
    } catch (e) {
      // Swapped for a link (or removed) since its lstat: not followed.
      if (!['ELOOP', 'ENOTDIR', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  }
}

/**
 * What restore wrote outside the data directory, and nothing else there: the WAL directory's WAL
 * (a delta leaves its other files alone), and of each tablespace's directory the directory itself
 * and the backup's own version directory (other clusters' may live beside it).
 */
export function chownOutside(o: Owner, walDir: string | undefined, tablespaces: { path: string; versionDir: string | null }[], madeAbove: string[] = []): void {
  // The levels restore made above them (a tablespace map to a path not there yet): root's 0700 would bar the server's way.
  for (const d of madeAbove) chownSync(d, o.uid, o.gid);
  if (walDir !== undefined) chownTree(walDir, o, (name) => isWalName(name) || name === 'archive_status' || name === 'summaries');
  for (const t of tablespaces) {
    chownSync(t.path, o.uid, o.gid);
    if (t.versionDir !== null) chownTree(join(t.path, t.versionDir), o);
  }
}
