// The prefetch spool of asynchronous archive-get, made ready by restore: the
// server's user runs restore_command, so the spool must be writable by it.

import { lchownSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { prefetchDir } from './prefetch.js';

/** The prefetch spool must be writable by the server's user: made here, and given to the data directory's owner when we are root. */
export function prepareSpool(spool: string, stanza: string, pgData: string, spoolBase?: string): void {
  const dir = prefetchDir(spool, stanza);
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (e) {
    throw new PgpitrError('ERR_TARGET', `cannot create the prefetch spool "${dir}": ${(e as Error).message}`, {
      hint: 'give a --spool-path the server\'s user can write, or --no-archive-async',
      cause: e,
    });
  }
  const owner = spoolOwner(pgData, spoolBase);
  if (!owner) return;
  // What we created (from `first` down), and the stanza's spool, belong to the server's user.
  const mine = new Set([join(spool, stanza), dir]);
  if (first !== undefined) for (let d = dir; d.length >= first.length; d = dirname(d)) mine.add(d);
  try {
    // lchown: a link in the spool's place is not followed (root must not give its target away)
    for (const d of mine) lchownSync(d, owner.uid, owner.gid);
  } catch (e) {
    throw storageError('give the spool to the data directory\'s owner', dir, e);
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

function nonRootOwner(path: string): { uid: number; gid: number } | null {
  try {
    const st = statSync(path);
    return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}
