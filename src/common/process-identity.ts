// What tells a process apart from a later one that got the same pid: its start
// time (field 22 of /proc/PID/stat, clock ticks since boot) and the boot it
// belongs to (/proc/sys/kernel/random/boot_id). Linux only: elsewhere, null.

import { readFileSync, readlinkSync } from 'node:fs';

export interface ProcessIdentity {
  /** Start time of the process in clock ticks since boot, as /proc shows it. */
  startTime: string;
  bootId: string;
}

export function currentBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** When this machine started, in seconds since the epoch (btime of /proc/stat). Null: no /proc. */
export function bootTimeSec(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** This process's pid namespace ("pid:[4026531836]"): pids of another one (a container) mean nothing here. Null: no /proc. */
export function currentPidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/** Whether process `pid` has exited and waits to be reaped (state Z in /proc: dead, whatever kill(pid, 0) says). */
export function processIsZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The start time of process `pid` (null: no such process, or no /proc). */
export function processStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields
  // resume after the last ')' with field 3 (state), so field 22 is the 20th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : null;
}

export function processIdentity(pid: number): ProcessIdentity | null {
  const bootId = currentBootId();
  const startTime = processStartTime(pid);
  return bootId !== null && startTime !== null ? { startTime, bootId } : null;
}

/**
 * Whether the process that wrote a record (pid on host, with its identity when
 * known) still runs: the same host, the pid alive, and the same start time and
 * boot when they were recorded. A pid reused after a crash or a reboot is not it.
 * Of another pid namespace (a container sharing the host name), its pid cannot be
 * judged from here: assumed to run.
 */
export function sameProcessAlive(r: { host: string; pid: number; startTime?: string | null; bootId?: string | null; pidNs?: string | null | undefined }, localHost: string): boolean {
  if (r.host !== localHost) return true; // cannot tell from here: assume it runs
  const boot = currentBootId();
  if (r.bootId && boot !== null && boot !== r.bootId) return false; // no process outlives a reboot
  if (r.pidNs && currentPidNamespace() !== null && r.pidNs !== currentPidNamespace()) return true;
  try {
    process.kill(r.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A start time that cannot be read (another user's process under hidepid) cannot tell: alive.
  const now = processStartTime(r.pid);
  if (r.startTime && now !== null && now !== r.startTime) return false;
  return true;
}
