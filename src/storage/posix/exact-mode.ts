// Files and directories given exactly the mode asked for, whatever the umask.
// A backup sets the umask to the source cluster's (pg_mode_mask: 077, or 027
// with group access), which narrows what open(2) and mkdir(2) make: a 0644
// file of the source would become 0600. pg_basebackup chmods each extracted
// member to the mode of its tar header; these do the same, on the descriptor
// (never through a link put at the path).

import { closeSync, constants, fchmodSync, openSync } from 'node:fs';

/**
 * The mode bits a file or directory may take from a backup stream or a manifest (what a server
 * sent): none that lets group or others write, so that no other user can swap a directory for a
 * link while root writes below it. PostgreSQL's own modes never allow it.
 */
export const STREAM_MODE_BITS = 0o755;

const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_DIRECTORY = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const OPEN_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Creates a file that must not exist yet (O_EXCL|O_NOFOLLOW) with exactly `mode`, open for
 * writing. Failures are the system's errors as they are (EEXIST, ELOOP...): callers word them.
 */
export function createExclusiveSync(path: string, mode: number): number {
  const fd = openSync(path, CREATE_EXCLUSIVE, mode);
  try {
    fchmodSync(fd, mode);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** Gives the directory at `path` (itself not a link: ELOOP/ENOTDIR then) exactly `mode`. */
export function setDirectoryModeSync(path: string, mode: number): void {
  setMode(path, OPEN_DIRECTORY, mode);
}

/** Gives the existing file at `path` (itself not a link: ELOOP then) exactly `mode`. */
export function setFileModeSync(path: string, mode: number): void {
  setMode(path, OPEN_FILE, mode);
}

function setMode(path: string, flags: number, mode: number): void {
  const fd = openSync(path, flags);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}
