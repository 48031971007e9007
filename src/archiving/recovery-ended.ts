// Has the recovery a fetcher serves ended? PostgreSQL removes recovery.signal
// and standby.signal from the data directory when recovery ends (a promotion,
// or the end of the archive): once either was seen there and both are gone, no
// restore_command will ask for WAL again, and the fetcher stops rather than go
// on fetching the new timeline's segments, which the promoted server archives,
// until its idle time runs out. Never seen (restore's head start, before it
// writes the signal files): nothing is judged. Looked at once a second.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

const LOOK_EVERY_MS = 1000;

export function recoveryEndWatch(pgdata: string, now: () => number = Date.now): () => boolean {
  let seen = false;
  let ended = false;
  let lookedAt = -Infinity;
  return () => {
    if (ended || now() - lookedAt < LOOK_EVERY_MS) return ended;
    lookedAt = now();
    const signalled = existsSync(join(pgdata, 'recovery.signal')) || existsSync(join(pgdata, 'standby.signal'));
    if (signalled) seen = true;
    else if (seen) ended = true;
    return ended;
  };
}
