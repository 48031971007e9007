// The prefetch spool of asynchronous archive-get, made ready by restore: the
// server's user runs restore_command, so the spool must be writable by it.

import { chownSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { prefetchDir } from './prefetch.js';

/** The prefetch spool must be writable by the server's user: made here, and given to the data directory's owner when we are root. */
export function prepareSpool(spool: string, stanza: string, pgData: string): void {
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
  if (process.getuid?.() !== 0) return;
  let owner;
  try {
    owner = statSync(pgData);
  } catch {
    return;
  }
  if (owner.uid === 0) return;
  // What we created (from `first` down), and the stanza's spool, belong to the server's user.
  const mine = new Set([join(spool, stanza), dir]);
  if (first !== undefined) for (let d = dir; d.length >= first.length; d = dirname(d)) mine.add(d);
  try {
    for (const d of mine) chownSync(d, owner.uid, owner.gid);
  } catch (e) {
    throw storageError('give the spool to the data directory\'s owner', dir, e);
  }
}
