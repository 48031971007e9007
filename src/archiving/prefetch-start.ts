// Starting the background fetcher of asynchronous archive-get: by
// restore_command when a file it asks for is not in the spool, and by restore
// itself, while it writes the data files, so that the first segments recovery
// asks for are already in the spool when the server starts (otherwise the
// first request pays for a Node start, a synchronous fetch and the fetcher's
// start, and each later one waits for the fetcher to get ahead).

import { join } from 'node:path';
import { liveLockHolder } from '../repo/lock.js';
import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import type { DetachedOptions } from './background.js';
import { noteRequest } from './prefetch.js';

export const FETCHER_LOCK = 'fetcher';

/** Starts the fetcher of a prefetch spool unless one runs; `args` are archive-get's options for it. */
export async function ensureFetcher(args: string[], dir: string, o: DetachedOptions = {}): Promise<void> {
  if (await liveLockHolder(new PosixStorage(dir), `${FETCHER_LOCK}.lock`)) return;
  const { startDetached } = await import('./background.js');
  startDetached(['archive-get', ...args, '--fetcher'], join(dir, 'fetcher.log'), o);
}

const HEAD_START_NICE = 10;

/** How long a fetcher restore starts waits for the server's first request before it stops and clears the spool. */
const HEAD_START_IDLE_MS = 120_000;

/**
 * Restore's head start: records the segment before `first` as the last one asked for, so that the
 * fetcher's window begins at `first`, and starts the fetcher as `owner` (the server's user, when
 * restore runs as root). If the server is not started within HEAD_START_IDLE_MS, the fetcher
 * stops and clears the spool; the first restore_command then starts one again.
 */
export async function warmPrefetch(args: string[], dir: string, first: string, segmentSize: number, owner?: DetachedOptions['owner']): Promise<void> {
  const seg = parseSegmentFileName(first, segmentSize);
  if (!seg || seg.segNo === 0n) return;
  noteRequest(dir, segmentFileName(seg.timeline, seg.segNo - 1n, segmentSize));
  // At a lower priority: while restore writes the files they come first (the server needs them all
  // before its first request); during recovery the server's startup process comes first.
  await ensureFetcher(args, dir, { ...(owner ? { owner } : {}), env: { PGPITR_FETCHER_IDLE_MS: String(HEAD_START_IDLE_MS) }, nice: HEAD_START_NICE });
}
