// The file-system steps restore takes in a target directory, each refusing to
// write through a link: a fresh file (whatever was there is unlinked first), a
// real directory, a root directory, and delta's test of a file already there.

import { closeSync, constants, fstatSync, openSync, promises as fsp, readFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname } from 'node:path';
import { createDigest, digestOf } from '../repo/backup-set/content-digest.js';
import type { ManifestFile } from '../repo/backup-set/manifest.js';
import { PgpitrError, storageError } from '../common/errors.js';
import { removeWithin } from './remove-within.js';
import { STREAM_MODE_BITS } from '../storage/posix/exact-mode.js';
import { makeDirsSync } from '../storage/durable.js';

export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageError('read information about', path, e);
  }
}

/**
 * A new file at path, open for writing. A file (or link) already there is unlinked, never written
 * through: it may be a link, or a hard link shared with another directory (pg_upgrade --link),
 * which must keep its content.
 */
export async function createFresh(path: string, mode: number): Promise<fsp.FileHandle> {
  const st = await lstatOrNull(path);
  if (st && !st.isDirectory()) await removeIfPresent(path);
  try {
    return await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode & STREAM_MODE_BITS);
  } catch (e) {
    throw storageError('create', path, e);
  }
}

export async function removeIfPresent(path: string): Promise<void> {
  try {
    await fsp.unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('remove', path, e);
  }
}

/** The directory path (and the levels above it that are missing), with mode; the directories it created above path. */
export async function makeRoot(path: string, mode: number, sync: boolean): Promise<string[]> {
  const created = makeDirsSync(path, mode, sync); // the levels it creates above the root are synced here, the root with its tree
  try {
    await fsp.chmod(path, mode);
  } catch (e) {
    throw storageError('create directory', path, e);
  }
  return created.filter((d) => d !== path);
}

/** A real directory at path (a link or file in its place is removed first), with mode. */
export async function makeRealDirectory(path: string, mode: number): Promise<void> {
  const st = await lstatOrNull(path);
  if (st && !st.isDirectory()) await fsp.rm(path, { force: true });
  if (!st || !st.isDirectory()) {
    try {
      await fsp.mkdir(path, { mode: mode & STREAM_MODE_BITS });
    } catch (e) {
      throw storageError('create directory', path, e);
    }
  }
  await fsp.chmod(path, mode & STREAM_MODE_BITS);
}

/** `link` made a symbolic link to `dest`, in place of what is there (never removed across a mount point). */
export async function placeLink(link: string, dest: string, what: string): Promise<void> {
  const st = await lstatOrNull(link);
  if (st !== null && st.isSymbolicLink() && (await fsp.readlink(link)) === dest) return;
  // A mount point itself: refused before anything in it is removed; one below it: what is mounted stays.
  const mounted = st !== null && st.dev !== (await fsp.stat(dirname(link))).dev;
  if (st !== null && (mounted || !(await removeWithin(link, st)))) {
    throw new PgpitrError('ERR_TARGET', `${link} ${mounted ? 'is' : 'holds'} a mount point: it cannot be replaced by the ${what} link to ${dest}`, {
      hint: `unmount it (what is mounted was left as it was${mounted ? '' : '; the rest of the directory was removed'}), or restore into another directory`,
    });
  }
  await fsp.symlink(dest, link).catch((e) => {
    throw storageError(`create ${what} link`, link, e);
  });
}

/**
 * Whether delta may keep a file of `uid`: run as anyone but root (the server's user), only its own
 * files, or recovery and the server could not write to it; root gives the whole tree its owner after.
 */
export function ownedHere(uid: number): boolean {
  const me = process.getuid?.() ?? 0;
  return me === 0 || uid === me;
}

/** Delta's test: a regular file (not a link) of the recorded size and digest, linked from nowhere else (copy-worker.ts says why); kept, it gets the recorded mode. */
export async function sameContent(path: string, f: ManifestFile): Promise<boolean> {
  const st = await lstatOrNull(path);
  if (!st || !st.isFile() || st.size !== f.size || st.nlink > 1 || !ownedHere(st.uid)) return false;
  const want = digestOf(f)!;
  const hash = createDigest(want.algorithm);
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    if (hash.digestHex() !== want.hex) return false;
    if (((await fh.stat()).mode & 0o7777) !== (f.mode & STREAM_MODE_BITS)) {
      try {
        await fh.chmod(f.mode & STREAM_MODE_BITS); // kept, with the recorded mode
      } catch {
        return false; // not ours to change (another owner): written again instead
      }
    }
    return true;
  } finally {
    await fh.close();
  }
}

/**
 * The text of a file restore wrote in the target (a configuration file it edits after the copy),
 * null when there is none: never read through a link, which is not what it wrote (a user able to
 * write the target, swapping it while a restore run as root goes on, would have root's file copied
 * into one the user owns).
 */
export function readOwnTargetFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new PgpitrError('ERR_TARGET', `"${path}" became a symbolic link while the restore ran`, { hint: 'something else writes in the target directory: stop it, then restore again' });
    throw storageError('read', path, e);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new PgpitrError('ERR_TARGET', `"${path}" is not a regular file`, { hint: 'something else writes in the target directory: stop it, then restore again' });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
