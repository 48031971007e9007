// Starting the background fetcher of asynchronous archive-get: by
// restore_command when a file it asks for is not in the spool, and by restore
// itself, while it writes the data files, so that the first segments recovery
// asks for are already in the spool when the server starts (otherwise the
// first request pays for a Node start, a synchronous fetch and the fetcher's
// start, and each later one waits for the fetcher to get ahead).
//
// A spool serves one repository (or set of repositories) and stanza at a
// time: the fetcher records both in its lock (locations as describeRepository
// gives them: no secret), and a request for another one is refused while it runs
// (its segments would otherwise be handed to the wrong server, which takes
// one from another system for the end of its WAL).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { liveLockHolder, SPOOL_LOCK_STALE_MS } from '../repo/lock.js';
import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import type { DetachedOptions } from './background.js';
import { noteRequest } from './prefetch.js';

export const FETCHER_LOCK = 'fetcher';

/**
 * What a fetcher records in its lock: the repositories and stanza it fetches from, and the system
 * it fetches for when known. One repository: its location (as fetchers always recorded it);
 * several: each as "repoN LOCATION", in order.
 */
export function fetcherSettings(repos: readonly { index: number; location: string }[], stanza: string, systemId: string | null = null, timeline: number | null = null): string[] {
  const where = repos.length === 1 ? repos[0]!.location : repos.map((r) => `repo${r.index} ${r.location}`).join(', ');
  // The timeline recovery follows (--recovery-timeline): the fetcher's window runs along its branch,
  // so a fetcher left by a recovery along another one never fills this one's spool.
  return [where, stanza, ...(systemId === null ? [] : [`system ${systemId}`]), ...(timeline === null ? [] : [`timeline ${timeline}`])];
}

/**
 * Makes sure the fetcher of a prefetch spool runs for `settings`: the pid of the one that already
 * did (null when this call started it). `args` are archive-get's options for it. Throws when the
 * spool's fetcher serves another repository or stanza.
 */
export async function ensureFetcher(args: string[], dir: string, settings: string[], o: DetachedOptions = {}): Promise<number | null> {
  const holder = await liveLockHolder(new PosixStorage(dir), `${FETCHER_LOCK}.lock`, { unjudgedStaleAfterMs: SPOOL_LOCK_STALE_MS });
  if (holder) {
    // A fetcher of an older pgpitr records no system: the same repositories and stanza are enough
    // (refusing it would stop a recovery, a standby's, across an upgrade of pgpitr).
    const theirs = holder.settings;
    const ours = theirs?.length === 2 ? settings.slice(0, 2) : settings;
    if (theirs && JSON.stringify(theirs) !== JSON.stringify(ours)) {
      throw new PgpitrError('ERR_USAGE', `the prefetch spool "${dir}" is in use by a fetcher (pid ${holder.pid}) for ${theirs[0]?.startsWith('repo') ? 'repositories' : 'repository'} ${theirs[0]}, stanza "${theirs[1]}"${theirs[2] ? `, ${theirs[2]}` : ''}`, {
        hint: 'give each recovery of a stanza of that name its own --spool-path (in restore_command too), or --no-archive-async',
      });
    }
    return holder.pid;
  }
  const { startDetached } = await import('./background.js');
  startDetached(['archive-get', ...args, '--fetcher'], join(dir, 'fetcher.log'), o);
  return null;
}

/** Environment of a fetcher restore starts: how long it waits for the server's first request, its priority, its first segment. */
export const FETCHER_IDLE_ENV = 'PGPITR_FETCHER_IDLE_MS';
export const FETCHER_NICE_ENV = 'PGPITR_FETCHER_NICE';
export const FETCHER_FROM_ENV = 'PGPITR_FETCHER_AFTER';
export const FETCHER_FIRST_WINDOW_ENV = 'PGPITR_FETCHER_FIRST_WINDOW';
/** The data directory being recovered: the fetcher stops once its recovery ended (prefetch.ts). */
export const FETCHER_PGDATA_ENV = 'PGPITR_FETCHER_PGDATA';

/**
 * The environment that tells a fetcher the data directory it serves: restore_command runs in it
 * (the server's working directory), restore names it. None when `dir` is not a data directory.
 */
export function pgdataEnv(dir: string): Record<string, string> {
  return existsSync(join(dir, 'PG_VERSION')) || existsSync(join(dir, 'global')) ? { [FETCHER_PGDATA_ENV]: dir } : {};
}

const HEAD_START_IDLE_MS = 120_000;
const HEAD_START_NICE = 10;

/**
 * Restore's head start: a fetcher whose window begins at `first`, before the server asks for it.
 * Started as `owner` (the server's user, when restore runs as root: then nothing is written in
 * the spool by this process), at a lower priority (while restore writes the files they come
 * first; during recovery the server's startup process does), waiting HEAD_START_IDLE_MS for the
 * first request before it stops and clears the spool as usual. A fetcher already running for this
 * repository (a recovery that ended a moment ago) has its window moved to `first` (and, since
 * that is a request, fetches its whole window). `firstWindow`: segments to fetch until then.
 */
export async function warmPrefetch(
  args: string[],
  dir: string,
  settings: string[],
  first: string,
  segmentSize: number,
  owner?: DetachedOptions['owner'],
  firstWindow?: number,
  pgdata?: string,
): Promise<void> {
  const seg = parseSegmentFileName(first, segmentSize);
  if (!seg || seg.segNo === 0n) return;
  const before = segmentFileName(seg.timeline, seg.segNo - 1n, segmentSize);
  const env: Record<string, string> = { [FETCHER_IDLE_ENV]: String(HEAD_START_IDLE_MS), [FETCHER_NICE_ENV]: String(HEAD_START_NICE), [FETCHER_FROM_ENV]: before };
  if (firstWindow !== undefined) env[FETCHER_FIRST_WINDOW_ENV] = String(firstWindow);
  if (pgdata !== undefined) env[FETCHER_PGDATA_ENV] = pgdata;
  const running = (await ensureFetcher(args, dir, settings, { ...(owner ? { owner } : {}), env })) !== null;
  if (running) noteRequest(dir, before, owner);
}
