// The prefetch spool of asynchronous archive-get, made ready by restore: the
// server's user runs restore_command, so the spool must be writable by it.

import { chmodSync, lchownSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { prefetchDir } from './prefetch.js';
import { nearestExisting, unsafeSpool } from './spool-safety.js';

/**
 * The prefetch spool must be writable by the server's user: made here, and given to the data
 * directory's owner when we are root. The levels above this restore's own spool (`spoolBase`, the
 * spool restore was given, and what it makes above) are made 0755: another restore's server user
 * must pass through them (made 0750 by a restore run as root into a directory root owned, they kept
 * every later restore's prefetch out). Returns a warning when that user still cannot reach it.
 */
export function prepareSpool(spool: string, stanza: string, pgData: string, spoolBase?: string, trustedOwners: readonly number[] = spoolTrustedOwners(pgData)): string | null {
  const dir = prefetchDir(spool, stanza);
  let first: string | undefined;
  try {
    const above = spoolBase !== undefined && spool.startsWith(spoolBase + '/') ? mkdirSync(spoolBase, { recursive: true, mode: 0o755 }) : undefined;
    // Passable whatever the umask: what was made above this restore's spool holds no file.
    if (above !== undefined) for (let d = spoolBase!; d.length >= above.length; d = dirname(d)) chmodSync(d, 0o755);
    first = mkdirSync(dir, { recursive: true, mode: 0o750 });
    if (above !== undefined) first = above;
  } catch (e) {
    throw new PgpitrError('ERR_TARGET', `cannot create the prefetch spool "${dir}": ${(e as Error).message}`, {
      hint: 'give a --spool-path the server\'s user can write, or --no-archive-async',
      cause: e,
    });
  }
  // restore_command's shell moves what is there into pg_wal: no other user may put it there.
  const unsafe = unsafeSpool(spoolBase !== undefined && spool.startsWith(spoolBase + '/') ? spoolBase : spool, dir, trustedOwners);
  if (unsafe !== null) {
    throw new PgpitrError('ERR_TARGET', `the prefetch spool "${dir}" is not safe: ${unsafe}; restore_command moves the segments there into pg_wal`, {
      hint: "give a --spool-path only the server's user (and root) can write, or --no-archive-async",
    });
  }
  const owner = spoolOwner(pgData, spoolBase);
  if (!owner) return null;
  // What we created (from `first` down), and the stanza's spool, belong to the server's user.
  const mine = new Set([join(spool, stanza), dir]);
  if (first !== undefined) for (let d = dir; d.length >= first.length; d = dirname(d)) mine.add(d);
  try {
    // lchown: a link in the spool's place is not followed (root must not give its target away)
    for (const d of mine) lchownSync(d, owner.uid, owner.gid);
  } catch (e) {
    throw storageError('give the spool to the data directory\'s owner', dir, e);
  }
  const closed = closedAbove(dir, owner);
  return closed === null ? null : `the server's user (uid ${owner.uid}) cannot pass through ${closed} to the prefetch spool ${dir}: recovery fetches each WAL file with a process of its own, much slower (chmod o+x ${closed}, or restore with a --spool-path it can reach)`;
}

/** The first directory above `dir` that `owner` may not pass through (by its mode bits), or null. */
function closedAbove(dir: string, owner: { uid: number; gid: number }): string | null {
  for (let d = dirname(dir); ; d = dirname(d)) {
    try {
      const st = statSync(d);
      const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
      if ((st.mode & bit) === 0) return d;
    } catch {
      return null;
    }
    if (d === dirname(d)) return null;
  }
}

/**
 * Who the spool's files must belong to: ourselves (undefined), or when we run as root the data
 * directory's owner, the user the server and its restore_command run as, else (the directory is
 * not there yet, or is root's) the owner of `spoolBase` (the spool restore was given, in which it
 * makes one of its own); null when that is root too, so that the server's user is not known.
 */
export function spoolOwner(pgData: string, spoolBase?: string): { uid: number; gid: number } | undefined | null {
  if (process.getuid?.() !== 0) return undefined;
  return nonRootOwner(pgData) ?? (spoolBase === undefined ? null : nonRootOwner(spoolBase));
}

/**
 * Whose spool directories restore may trust besides its own and root's: when root restores, the
 * server's user, the owner of the data directory (or, not made yet, of the nearest directory above).
 */
export function spoolTrustedOwners(pgData: string): number[] {
  if (process.getuid?.() !== 0) return [];
  const owner = nonRootOwner(nearestExisting(pgData));
  return owner === null ? [] : [owner.uid];
}

function nonRootOwner(path: string): { uid: number; gid: number } | null {
  try {
    const st = statSync(path);
    return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}
