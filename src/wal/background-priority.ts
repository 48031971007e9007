// receive-wal's stream comes first. In repository mode a completed segment is
// compressed and stored by the other threads of the process (libuv's thread
// pool; V8's helpers share the fate): on Linux they run at a lower CPU priority
// than the main thread, which receives, writes and reports. When the machine
// has CPU to spare this changes nothing; beside a busy primary on the same
// cores it leaves the CPU to the walsender and the stream first, and the
// segments, safe on local disk meanwhile, are stored a little later (measured:
// bench/archive-async.mjs, receive-wal lag).

import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Nice value of the background threads: CFS gives them ~1/10 of a main thread's share when both want the CPU. */
export const BACKGROUND_NICE = 10;

/**
 * Lowers the priority of every thread of this process except the main one. Linux
 * only (elsewhere a no-op: there, a thread id is not a process id); a thread
 * already at that level or gone is skipped. An unprivileged process cannot raise
 * a priority again, so this is for the process's lifetime.
 */
export function lowerBackgroundThreadsPriority(nice = BACKGROUND_NICE): number {
  if (process.platform !== 'linux') return 0;
  let changed = 0;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const t of tids) {
    const tid = Number(t);
    if (tid === process.pid) continue;
    try {
      setPriority(tid, nice);
      changed++;
    } catch {
      /* exited, or not allowed */
    }
  }
  return changed;
}
