// Whether the fetcher of a prefetch spool has cleared what the one before it
// left there: a new fetcher holds its lock before it clears the spool (after it
// has read the stanza), and until then a file in the spool may be one an ended
// fetcher left, for other repositories maybe. archive-get takes a prefetched
// file only once the lock's holder has said so.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../storage/durable.js';
import { processStartTime } from '../common/process-identity.js';

/** Holds "PID STARTTIME" of the fetcher that has cleared the spool (STARTTIME 0: no /proc). */
export const CLEARED = 'fetcher.cleared';

/** Said by the fetcher once it has cleared the spool. */
export function markSpoolCleared(dir: string): void {
  writeFileAtomicSync(join(dir, CLEARED), `${process.pid} ${processStartTime(process.pid) ?? 0}\n`, false);
}

/** Said by a fetcher as soon as it holds the lock: what an earlier one (a pid reused since) said no longer stands. */
export function forgetSpoolCleared(dir: string): void {
  rmSync(join(dir, CLEARED), { force: true });
}

/** Whether the fetcher `pid` (the one holding the spool's lock: prefetch-start.ts ensureFetcher) has cleared it. */
export function spoolClearedBy(dir: string, pid: number): boolean {
  try {
    return Number(readFileSync(join(dir, CLEARED), 'utf8').trim().split(/\s+/)[0]) === pid;
  } catch {
    return false;
  }
}
