// Has the recovery a fetcher serves ended? PostgreSQL removes recovery.signal
// and standby.signal from the data directory when recovery ends (a promotion,
// or the end of the archive): once recovery was seen (a signal file there, or
// the server's restore_command asking the fetcher: `asked`), and then neither
// signal file is there while a server runs (postmaster.pid), no restore_command
// will ask for WAL again, and the fetcher stops rather than go on fetching the
// new timeline's segments, which the promoted server archives, until its idle
// time runs out. A signal file gone while no server runs (a leftover one that
// restore --delta removes) ends nothing, nor does a directory never seen
// recovering (restore's head start before the server). Only "not there" counts as gone (a file
// that cannot be looked at, EACCES or ESTALE, is taken as there). Looked at
// once a second.

import { lstatSync } from 'node:fs';
import { join } from 'node:path';

const LOOK_EVERY_MS = 1000;

function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export function recoveryEndWatch(pgdata: string, now: () => number = Date.now): (asked?: boolean) => boolean {
  let seen = false;
  let ended = false;
  let lookedAt = -Infinity;
  return (asked = false) => {
    if (ended || now() - lookedAt < LOOK_EVERY_MS) return ended;
    lookedAt = now();
    const signalled = present(join(pgdata, 'recovery.signal')) || present(join(pgdata, 'standby.signal'));
    if (signalled || asked) seen = true;
    if (seen && !signalled && present(join(pgdata, 'postmaster.pid'))) ended = true;
    return ended;
  };
}
