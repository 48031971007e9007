// A lock file touched while its holder runs: a holder another pid namespace or host cannot judge
// (a container restarted over the same directory) is stale once its lock is left untouched
// (repo/lock.ts, UnjudgedStaleness). Used by the spool's background processes and receive-wal.

import { utimes } from 'node:fs/promises';

/** How often a held lock is touched (stale after SPOOL_LOCK_STALE_MS untouched, to a newcomer that cannot judge its holder). */
export const LOCK_HEARTBEAT_MS = 10_000;

/** Touches `path` every `everyMs` until the returned function is called. */
export function touchWhileHeld(path: string, everyMs = LOCK_HEARTBEAT_MS): () => void {
  const beat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, everyMs);
  beat.unref();
  return () => clearInterval(beat);
}
