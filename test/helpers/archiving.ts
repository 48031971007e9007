// Helpers of the archiving tests: waiting until the server reports a segment
// archived, and finding (to stop) the background process holding a spool lock.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestCluster } from '../harness/cluster.js';

export async function lastArchived(c: TestCluster): Promise<string> {
  return (await c.sql<{ last: string }>("select coalesce(last_archived_wal, '') as last from pg_stat_archiver"))[0]!.last;
}

export async function waitArchived(c: TestCluster, wal: string, seconds = 90): Promise<void> {
  for (let i = 0; i < seconds * 5; i++) {
    if ((await lastArchived(c)) >= wal) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`segment ${wal} was not archived in time:\n${c.logTail()}`);
}

/** The pid in `<dir>/<lock>.lock` (the background pusher or fetcher), or null. */
export function lockHolderPid(dir: string, lock: string): number | null {
  try {
    return (JSON.parse(readFileSync(join(dir, `${lock}.lock`), 'utf8')) as { pid: number }).pid;
  } catch {
    return null;
  }
}

/** Kills the background process holding `<dir>/<lock>.lock`, if any (test clean-up). */
export function killLockHolder(dir: string, lock: string): void {
  const pid = lockHolderPid(dir, lock);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
