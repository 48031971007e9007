// -j N against this process's open-file limit (RLIMIT_NOFILE), checked before
// anything is written. Each reader thread has its own event loop (an epoll and
// eventfd descriptors: 4 measured on Node 20) and holds a source and a target
// file open; the main thread keeps what it has open now plus its connections,
// the WAL segment, the state file and the tar streams. Past the limit a thread
// fails to start (EMFILE) or a copy fails half-way; refusing up front names
// the cause and the fix instead.

import { readFileSync, readdirSync } from 'node:fs';
import { usageError } from '../../common/errors.js';

/** Descriptors one reader thread needs: its event loop's, a file read and a file written. */
export const FILES_PER_READER = 6;
/** What the main thread may open besides what it has open now (connections, WAL, state file, sinks). */
export const MAIN_THREAD_RESERVE = 32;

/** The soft limit of open files, from /proc/self/limits (null where there is none to read). */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? n : null;
}

function openNow(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** Throws a usage error (exit 2) when -j `jobs` cannot have its files open under `limit`. */
export function checkOpenFileLimit(jobs: number, limit: number | null = openFileLimit(), inUse = openNow()): void {
  if (limit === null) return;
  const needed = inUse + MAIN_THREAD_RESERVE + jobs * FILES_PER_READER;
  if (needed <= limit) return;
  const most = Math.floor((limit - inUse - MAIN_THREAD_RESERVE) / FILES_PER_READER);
  throw usageError(
    `-j ${jobs} needs about ${needed} open files, more than this process's open-file limit of ${limit}`,
    most >= 1 ? `give -j ${most} or less, or raise the limit (ulimit -n ${needed})` : `raise the open-file limit (ulimit -n ${needed})`,
  );
}
