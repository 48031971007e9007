// Whether a server runs on a data directory, from its postmaster.pid: restore
// refuses to write under one (restore-target-dir.ts); a pusher whose server
// stopped exits once it has stored what was left ready, and another cluster's
// archive_command waits for that rather than failing (archiving/).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bootTimeSec } from '../common/process-identity.js';

/**
 * The live process postmaster.pid names, or null when none does. A server in single-user mode
 * (postgres --single) writes its pid negated. A file that cannot be read or parsed names no
 * process we can judge: 0 (refused as running: the DBA removes the file once sure). A pid not
 * alive here counts as gone only when the server started before this machine did (its start time,
 * line 3): since then, it may be running in another pid namespace (a container sharing the
 * volume) or on another host (a shared file system), where this process cannot see it.
 */
export function livePostmaster(pidFile: string): number | null {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? null : 0;
  }
  const first = text.split('\n')[0]!.trim();
  const pid = /^-?\d+$/.test(first) ? Math.abs(Number(first)) : 0;
  if (!Number.isSafeInteger(pid) || pid === 0) return 0;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM') return pid;
  }
  const started = Number(text.split('\n')[2]?.trim());
  const boot = bootTimeSec();
  if (Number.isSafeInteger(started) && started > 0 && boot !== null && started < boot) return null;
  return -pid;
}

/**
 * Whether the server whose pg_wal is `pgWal` (its data directory's, as archive_command gives it) has
 * stopped: no postmaster.pid beside its PG_VERSION, or one naming a pid not running here. For callers in the server's pid
 * namespace (its archive_command's processes): a file that cannot be read counts as running.
 */
export function clusterStopped(pgWal: string): boolean {
  // Not a data directory's pg_wal (no PG_VERSION beside it): nothing to judge by.
  if (!existsSync(join(dirname(pgWal), 'PG_VERSION'))) return false;
  const pid = livePostmaster(join(dirname(pgWal), 'postmaster.pid'));
  return pid === null || pid < 0;
}
