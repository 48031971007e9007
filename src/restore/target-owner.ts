// What a restore does to its target beside writing the backup's files: it
// holds a lock in the data directory while it writes (two restores into one
// directory would rewrite each other's files, and the first to finish would
// declare it ready while the other still writes), and, run as root, it gives
// what it wrote to the data directory's owner.

import { chownSync, fchownSync, fstatSync, lchownSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
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

/** How chownTree opens the top of the tree. */
export interface TreeTop {
  /** Follow a link there (a directory the user gave, maybe a mount point); else a link is refused. */
  follow: boolean;
  /** The directory it must be (device and inode, taken while the restore held it): another in its place is refused. */
  expect?: { dev: number; ino: number };
}

/**
 * A directory and everything under it (links themselves are left alone, never followed). The top
 * is opened once and changed through its descriptor, and below it owners change with lchown
 * through each open directory (anchored-dir.ts): the server's user owns these directories, and an
 * entry swapped for a link, or a directory swapped for a link to /etc, must not hand root's files
 * to that user.
 */
export function chownTree(dir: string, o: Owner, top: TreeTop, only?: (name: string) => boolean): void {
  try {
    withDirSync(dir, dir, top.follow, (d) => {
      if (d.fd === null) chownSync(dir, o.uid, o.gid);
      else {
        const st = fstatSync(d.fd);
        if (top.expect && (st.dev !== top.expect.dev || st.ino !== top.expect.ino)) {
          throw new PgpitrError('ERR_TARGET', `"${dir}" is no longer the directory this restore wrote: it was replaced while the restore ran`, { hint: 'something else writes where the restore does: stop it, then restore again' });
        }
        fchownSync(d.fd, o.uid, o.gid);
      }
      chownBelow(d, o, only);
    });
  } catch (e) {
    if (e instanceof PgpitrError) throw e;
    throw storageError('give to the server\'s user', dir, e);
  }
}

function chownBelow(dir: AnchoredDir, o: Owner, only?: (name: string) => boolean): void {
  for (const name of readdirSync(dir.at())) {
    if (only && !only(name)) continue;
    const shown = join(dir.path, name);
    const st = lstatSync(dir.at(name), { throwIfNoEntry: false });
    if (st === undefined || st.isSymbolicLink()) continue;
    try {
      lchownSync(dir.at(name), o.uid, o.gid);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw storageError('give to the server\'s user', shown, e);
    }
    if (!st.isDirectory()) continue;
    try {
      withDirSync(dir.at(name), shown, false, (d) => chownBelow(d, o));
    } catch (e) {
      if (e instanceof PgpitrError) throw e;
      // Swapped for a link (or removed) since its lstat: not followed.
      if (!['ELOOP', 'ENOTDIR', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) throw storageError('give to the server\'s user', shown, e);
    }
  }
}

/**
 * What restore wrote outside the data directory, and nothing else there: the WAL directory's WAL
 * (a delta leaves its other files alone), and of each tablespace's directory the directory itself
 * and the backup's own version directory (other clusters' may live beside it).
 */
export function chownOutside(o: Owner, walDir: string | undefined, tablespaces: { path: string; versionDir: string | null }[], madeAbove: string[] = [], ids: ReadonlyMap<string, { dev: number; ino: number }> = new Map()): void {
  // The levels restore made above them (a tablespace map to a path not there yet): root's 0700 would
  // bar the server's way. Never through a link one of them was swapped for (lchown: the link's own).
  for (const d of madeAbove) lchownSync(d, o.uid, o.gid);
  // The roots are the user's paths (maybe links to a mount point), followed, but given away only if
  // still the directory restore made or found there: one swapped for a link to elsewhere is refused.
  if (walDir !== undefined) chownTree(walDir, o, { follow: true, expect: ids.get(walDir) }, (name) => isWalName(name) || name === 'archive_status' || name === 'summaries');
  for (const t of tablespaces) {
    chownTree(t.path, o, { follow: true, expect: ids.get(t.path) }, () => false);
    // Made by restore in a directory that user owns: never followed if it became a link.
    if (t.versionDir !== null) chownTree(join(t.path, t.versionDir), o, { follow: false });
  }
}
