// Directories a restore walks to change what is in them (give it to the data
// directory's owner, remove what a delta does not keep). Run as root, it walks
// directories the server's user owns, who could swap one for a link to /etc
// between the moment it is looked at and the moment it is changed. So each
// directory is opened once, without following a link (but for the walk's own
// root, which may be a link the user gave: a mount point), and what is in it
// is reached through /proc/self/fd/<fd>/<name>: the kernel resolves that path
// through the open directory itself, as the *at() system calls do, never
// through its name again. Where /proc is not mounted, through the path.

import { closeSync, constants, existsSync, openSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';

const PROC_FD = '/proc/self/fd';
const anchored = existsSync(PROC_FD);
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY;

/** An open directory: `path` names it for messages and comparisons, `at(name)` reaches an entry through it. */
export interface AnchoredDir {
  path: string;
  /** The open directory's descriptor; null where /proc is not mounted (nothing is opened). */
  fd: number | null;
  /** The directory itself ('') or an entry in it, as a path that does not go through the directory's name. */
  at(name?: string): string;
}

function dirOf(path: string, fd: number | null): AnchoredDir {
  const base = fd === null ? path : `${PROC_FD}/${fd}`;
  return { path, fd, at: (name = '') => (name === '' ? base : join(base, name)) };
}

/**
 * Runs `fn` with directory `path` open: `follow` for a walk's root (a link the user gave is
 * followed), else a link in its place fails (ELOOP or ENOTDIR, as open(2) says). `path` may be an
 * anchored path of the directory above (`parent.at(name)`); `name` is then what messages show.
 */
export async function withDir<T>(path: string, shown: string, follow: boolean, fn: (dir: AnchoredDir) => Promise<T>): Promise<T> {
  if (!anchored) return fn(dirOf(shown, null));
  const h = await fsp.open(path, OPEN_DIR | (follow ? 0 : constants.O_NOFOLLOW));
  try {
    return await fn(dirOf(shown, h.fd));
  } finally {
    await h.close();
  }
}

/** withDir, synchronous. */
export function withDirSync<T>(path: string, shown: string, follow: boolean, fn: (dir: AnchoredDir) => T): T {
  if (!anchored) return fn(dirOf(shown, null));
  const fd = openSync(path, OPEN_DIR | (follow ? 0 : constants.O_NOFOLLOW));
  try {
    return fn(dirOf(shown, fd));
  } finally {
    closeSync(fd);
  }
}
