// `pgpitr archive-get %f %p`: one WAL file from the stanza's archive into %p,
// verified (wal/archive-wal-file.ts). With --archive-async, the prefetched copy
// when the background fetcher (archiving/prefetch.ts) already has it, and that
// fetcher kept running ahead of recovery; runBackgroundFetcher is its process.
// The answer is true (fetched) or false (the repository and the stanza are
// healthy and the archive does not hold the file); every other outcome throws,
// so that recovery never takes a fault for the end of the archive. With
// several repositories, the first (by N) holding a verified copy gives it
// (wal/fetch-from-repositories.ts); "not found" needs every one to answer.

import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { walFileKind } from '../repo/layout.js';
import { repoName } from '../repo/numbered-repository.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { ArchivedAfter } from '../repo/archive-gap.js';
import type { AskAnswerer } from '../archiving/prefetch-ask.js';
import { readAnyStanzaWithArchive, restoreFromRepositories, storedInAny } from '../wal/fetch-from-repositories.js';

export interface ArchiveGetRequest {
  /** The repositories to fetch from, in the order they are tried (by N; one with --repo N). */
  repos: NumberedRepository[];
  stanza: string;
  /** A repository passed over for a later one (unreadable, a damaged copy): for the server log. */
  warn: (text: string) => void;
  /**
   * The database system being recovered (--system-id, or the data directory's pg_control when
   * PostgreSQL runs restore_command there): a repository whose stanza is another system's is
   * never fetched from. null: not known, not checked.
   */
  systemId: string | null;
  /**
   * A recovery to the end of the archive runs (not a standby, not --accept-archive-gap): a segment
   * missing while a later one is archived along its branch is a gap, and fails (recovery stops)
   * instead of being "not found" (recovery ends there and the server is promoted). null: no check.
   */
  stopAtGap?: GapCheck | null;
  /**
   * PostgreSQL asks, in a recovery following followedTimeline: a segment of an older timeline past
   * where the branch left it is "not found", never served (repo/followed-branch.ts); `standby`: the
   * recovery never ends on "not found". null: no check (a run by hand).
   */
  branch?: { standby: boolean } | null;
  /** The data directory, when PostgreSQL runs restore_command there (%p relative to it). */
  dataDir?: string | null;
  /**
   * --recovery-timeline (null: the newest in the archive, as recovery_target_timeline = latest),
   * however archive-get is run: also part of the background fetcher's settings.
   */
  followedTimeline?: number | null;
}

export interface GapCheck {
  /** The timeline recovery follows (--recovery-timeline); null: the newest in the archive. */
  timeline: number | null;
  /** Whether the data directory's pg_wal holds the file, its WAL going on past it: recovery reads it there when the archive has none. */
  inDataDir(name: string): Promise<boolean>;
}

export interface PrefetchSettings {
  spoolPath: string;
  /** The command's option arguments: the fetcher is started with them. */
  optionArgs: string[];
}

/** The background fetcher answering restore_command's shell (archiving/prefetch-ask.ts): its own spool directory. */
export interface InsideFetcher {
  fetcherDir: string;
}

export async function archiveGet(req: ArchiveGetRequest, name: string, dest: string, prefetch: PrefetchSettings | InsideFetcher | null): Promise<boolean> {
  if (req.branch && walFileKind(name) === 'segment' && (await leftByBranch(req, name, req.followedTimeline ?? null, req.branch.standby))) return false;
  if (await fetchFromArchive(req, name, dest, prefetch)) return true;
  if (walFileKind(name) !== 'segment') return false;
  const ending = req.branch?.standby === false && req.dataDir ? req.dataDir : null;
  // In a recovery that ends, what receive-wal received of it (read once): a whole segment it has
  // not stored yet is stored, then fetched (it may fill what would be a gap).
  const received = ending !== null ? await receivedCopy(req, name) : null;
  if (ending !== null && received !== null && !received.padded) return (await handOver(req, ending, name, received)) === 'stored' && fetchFromArchive(req, name, dest, null);
  const check = req.stopAtGap;
  if (check) {
    if (await check.inDataDir(name)) return false;
    // Parallel pushes (asynchronous archive-push with process-max > 1, several repositories) may
    // store a segment before the one ahead of it: a gap younger than that is waited out (from the
    // later segment's time, or from now if that is in the future: another host's clock).
    const started = Date.now();
    for (;;) {
      const gap = await gapAfter(req, name, check.timeline);
      if (gap === null) break;
      if (Date.now() - Math.min(gap.after.mtimeMs, started) > GAP_SETTLE_MS) throw gapError(name, gap);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      if (await fetchFromArchive(req, name, dest, null)) return true;
    }
  }
  // The archive's end, in a recovery that ends there: the segment receive-wal was receiving goes
  // into pg_wal for recovery to read there (still "not found" here); none, the archive is looked
  // at again (receive-wal stores a segment, then removes it).
  if (ending !== null) {
    if (received === null) return fetchFromArchive(req, name, dest, null);
    await handOver(req, ending, name, received); // received in part: into pg_wal
    return false;
  }
  return false;
}

interface ReceivedCopy {
  r: NumberedRepository;
  data: Buffer;
  /** Received in part, zero-padded (a .partial). */
  padded: boolean;
  /** Its length without the trailing zeros. */
  end: number;
}

/**
 * receive-wal's copy of segment `name` (repo/receiver-partial.ts), the longest any repository's
 * receiver holds; null when none holds one. They must agree where they overlap, and one that
 * cannot be read is not passed over (a shorter copy would end recovery before it): recovery stops.
 */
async function receivedCopy(req: ArchiveGetRequest, name: string): Promise<ReceivedCopy | null> {
  const { receivedSegment } = await import('../repo/receiver-partial.js');
  const { endOfContent } = await import('../wal/pg-wal-file.js');
  const { wal_segment_size: segmentSize } = await readAnyStanzaWithArchive(req.repos, req.stanza);
  let best: ReceivedCopy | null = null;
  for (const r of req.repos) {
    let got: Awaited<ReturnType<typeof receivedSegment>>;
    try {
      got = await receivedSegment(r.repo, req.stanza, name, segmentSize, req.systemId);
    } catch (e) {
      throw new PgpitrError('ERR_STORAGE', `what receive-wal received of ${name} could not be read (${repoName(r)}): ${(e as Error).message}; recovery is stopped rather than ended without it`, {
        hint: "make receive-wal's directory readable by the server's user, or move its copy aside to end recovery without it, then start the server again",
      });
    }
    if (got === null) continue;
    const end = endOfContent(got.data);
    if (best !== null) {
      const common = Math.min(end, best.end);
      if (!got.data.subarray(0, common).equals(best.data.subarray(0, common))) {
        throw new PgpitrError('ERR_CHECK', `receive-wal's copies of ${name} in ${repoName(best.r)} and ${repoName(r)} differ: recovery is stopped rather than handed either`, {
          hint: 'one of the receivers streamed another server (or an old run\'s file was left): move the wrong copy aside and start the server again',
        });
      }
      if (end <= best.end && !(best.padded && !got.padded)) continue;
    }
    best = { r, data: got.data, padded: got.padded, end };
  }
  return best;
}

/**
 * A received copy handed over: whole, stored in the archive as receive-wal would (PostgreSQL
 * removes a whole segment it read from pg_wal at the end of recovery, unarchived: the archive
 * would keep a hole), or into pg_wal when it cannot be; received in part, into pg_wal.
 */
async function handOver(req: ArchiveGetRequest, dataDir: string, name: string, got: ReceivedCopy): Promise<'pg_wal' | 'stored'> {
  const { placeInPgWal } = await import('../wal/pg-wal-file.js');
  const { r } = got;
  let unstored = '';
  if (!got.padded) {
    try {
      const { pushWalFile } = await import('../repo/archive-store.js');
      const { readStanza } = await import('../repo/stanza.js');
      await pushWalFile(r.repo, await readStanza(r.repo, req.stanza), name, got.data, { compression: 'zstd' });
      req.warn(`WAL segment ${name} was not archived yet: receive-wal had received it whole (${repoName(r)}); it is stored now, as receive-wal would have`);
      return 'stored';
    } catch (e) {
      unstored = `; it could not be stored (${(e as Error).message}): receive-wal's copy is its only one once recovery ends, store it (receive-wal started again on its directory does)`;
    }
  }
  if (placeInPgWal(dataDir, name, got.data, got.padded) || unstored) req.warn(`WAL segment ${name} is not archived yet: what receive-wal received of it (${repoName(r)}) is put into pg_wal, where recovery reads it${unstored}`);
  return 'pg_wal';
}

/**
 * Whether segment `name` is an older timeline's file at a segment number where the branch recovery
 * follows reads a newer timeline's (said in the server log). The timeline followed: --recovery-timeline,
 * else the newest any repository of this system holds. Judged by the first such repository holding
 * the branch's history file (another system's is passed over); when a repository that may hold it
 * cannot be read, the server stops (throws), a standby as a recovery.
 */
async function leftByBranch(req: ArchiveGetRequest, name: string, timeline: number | null, standby: boolean): Promise<boolean> {
  const asked = parseInt(name.slice(0, 8), 16);
  // The timeline followed asked for: nothing to judge, nothing read.
  if (timeline !== null && asked === timeline) return false;
  const { followedBranch, offBranch } = await import('../repo/followed-branch.js');
  const passed = (repo: unknown, e: Error) => {
    const r = req.repos.find((x) => x.repo === repo);
    if (req.repos.length > 1 && r) req.warn(`${repoName(r)} passed over to judge which timeline's file of segment ${name.slice(8)} recovery reads: ${e.message}`);
  };
  const { follows, spans, onBranch, segmentSize, failed } = await followedBranch(req.repos.map((r) => r.repo), req.stanza, timeline, req.systemId, passed);
  // The branch cannot be told (the repository holding its history file, or, following the latest
  // timeline, one that may hold a newer timeline's, is out of reach): the server stops rather than
  // end here or be given an abandoned future. A standby too, as on any fault (docs/exit-codes.md):
  // told "not found" while it is being promoted, it would end recovery before WAL the archive holds.
  if (failed && (spans === null || timeline === null)) {
    throw new PgpitrError('ERR_STORAGE', `WAL segment ${name} of timeline ${asked} is asked for along timeline ${timeline ?? `${follows} or a newer one`}, and a repository that may hold its history file cannot be read: whether it is that branch's cannot be told`, {
      hint: `make the repository readable again, then start the ${standby ? 'standby' : 'server'} again`,
    });
  }
  if (asked === follows || spans === null) return false;
  const reads = offBranch(spans, onBranch, name, segmentSize);
  if (reads === null) return false;
  // Following the newest timeline by assumption (no --recovery-timeline), PostgreSQL would have been
  // given that timeline's file, which is archived: it follows another (recovery_target_timeline
  // current or a number, restore_command written by hand), to which "not found" ends recovery here.
  const readsFile = `${reads.toString(16).toUpperCase().padStart(8, '0')}${name.slice(8)}`;
  if (timeline === null && (await storedInAny(req.repos, req.stanza, readsFile))) {
    const what = `WAL segment ${name} is asked for while ${readsFile}, the newest timeline's file of that segment, is archived: recovery follows another timeline than the newest, and restore_command does not say which`;
    const hint = `add --recovery-timeline N to restore_command, N the timeline recovery follows (recovery_target_timeline; pgpitr restore writes it)`;
    if (standby) {
      req.warn(`${what}; the standby is told "not found": ${hint}`);
      return true;
    }
    throw new PgpitrError('ERR_CHECK', what, { hint: `${hint}, then start the server again` });
  }
  // Not archived: "not found" either way, and nothing was left out (after a clean switchover
  // PostgreSQL asks for the old timeline's last segment, archived as .partial only).
  if (!(await storedInAny(req.repos, req.stanza, name))) return true;
  req.warn(`WAL segment ${name} is not given to recovery: along the timeline it follows (${follows}), segment ${name.slice(8)} is read from timeline ${reads}, whose file is not archived yet; timeline ${asked}'s holds the WAL it went on with past its fork`);
  return true;
}

/**
 * Prefetched segments the branch recovery follows does not read (archiving/spool-off-branch.ts),
 * removed before the shell's move can hand them over: the fetcher does it when it sees the branch,
 * but one that runs without progress (stopped, frozen, blocked on a repository) never would.
 */
async function removeSpooledOffBranch(req: ArchiveGetRequest, dir: string): Promise<void> {
  const { removeOffBranch, spooledSegments } = await import('../archiving/spool-off-branch.js');
  const names = spooledSegments(dir);
  if (names.length === 0) return; // nothing to judge: the repositories are not read for it
  const { followedBranch } = await import('../repo/followed-branch.js');
  // (A branch that cannot be told now is judged again by each request: leftByBranch.)
  const b = await followedBranch(req.repos.map((r) => r.repo), req.stanza, req.followedTimeline ?? null, req.systemId, () => {}).catch(() => null);
  if (b === null || b.spans === null) return;
  for (const n of removeOffBranch(dir, names, b.spans, b.onBranch, b.segmentSize)) req.warn(`prefetched ${n} removed from the spool: along the timeline recovery follows (${b.follows}) that segment is read from another timeline`);
}

/** How long after a later segment was stored the one missing ahead of it may still come. */
const GAP_SETTLE_MS = 60_000;

type Gap = { after: ArchivedAfter; repo: NumberedRepository };

/** A segment archived after `name` along the branch recovery follows, in any repository (repo/archive-gap.ts). */
async function gapAfter(req: ArchiveGetRequest, name: string, timeline: number | null): Promise<Gap | null> {
  const { archivedAfter } = await import('../repo/archive-gap.js');
  const { wal_segment_size: segmentSize } = await readAnyStanzaWithArchive(req.repos, req.stanza);
  for (const r of req.repos) {
    const after = await archivedAfter(r.repo, req.stanza, name, segmentSize, timeline);
    if (after !== null) return { after, repo: r };
  }
  return null;
}

function gapError(name: string, gap: Gap): PgpitrError {
  return new PgpitrError('ERR_NOT_FOUND', `WAL segment ${name} is not in the archive, but ${gap.after.name} after it is (${repoName(gap.repo)}): a gap, not the end of the archive`, {
    hint:
      "recovery stops here rather than end at the gap and lose the WAL after it. Archive the missing segments (from the old primary's pg_wal, or another repository: pgpitr archive-push) and start the server again; " +
      'or, to end recovery at the gap, add --accept-archive-gap to restore_command (pgpitr restore --accept-archive-gap writes it; restore writes it too for a recovery with a target, which PostgreSQL refuses to end short of)',
  });
}

async function fetchFromArchive(req: ArchiveGetRequest, name: string, dest: string, prefetch: PrefetchSettings | InsideFetcher | null): Promise<boolean> {
  // A stanza or repository that is not there is an error, never "not found": fetchWalFile checks
  // it, and so does the prefetching path before it hands over a prefetched file.
  if (prefetch === null || walFileKind(name) !== 'segment') return fetchHere(req, name, dest);
  await readAnyStanzaWithArchive(req.repos, req.stanza);
  const { openPrefetchDir, noteRequest, takePrefetched, readFetchFailure, clearFetchFailure } = await import('../archiving/prefetch.js');
  let dir: string;
  // Without the system (a run by hand with an absolute path and no --system-id), no fetcher is
  // started or told about the request, and nothing is taken from the spool: a fetcher that checks no
  // system would fill a spool whose files restore_command's shell moves into place unchecked.
  const systemId = req.systemId;
  // Files are taken from the spool only while a fetcher for these settings runs and has cleared
  // it: what is there before was left by one that ended (for other repositories maybe).
  let takeFromSpool = systemId !== null;
  if ('fetcherDir' in prefetch) {
    // The fetcher itself: the request moves its window, as archive-get's does.
    dir = prefetch.fetcherDir;
    noteRequest(dir, name);
  } else {
    try {
      dir = openPrefetchDir(prefetch.spoolPath, req.stanza);
      if (systemId !== null) noteRequest(dir, name);
    } catch (e) {
      // A spool that cannot be written holds nothing to hand over either: fetched here, as without
      // --archive-async, rather than stopping recovery for want of a prefetch.
      const msg = (e as Error).message;
      req.warn(`${msg.includes(prefetch.spoolPath) ? msg : `the prefetch spool under ${prefetch.spoolPath} cannot be used (${msg})`}; fetching ${name} without the prefetch`);
      return fetchHere(req, name, dest);
    }
    if (systemId !== null) {
      if (req.branch) await removeSpooledOffBranch(req, dir);
      const { ensureFetcher, fetcherSettings, pgdataEnv } = await import('../archiving/prefetch-start.js');
      const { spoolClearedBy } = await import('../archiving/fetcher-cleared.js');
      // The server runs restore_command in its data directory: the fetcher stops once that recovery ended.
      const running = await ensureFetcher(fetcherArgs(prefetch.optionArgs, systemId), dir, fetcherSettings(locations(req.repos), req.stanza, systemId, req.followedTimeline ?? null), { env: pgdataEnv(process.cwd()) });
      takeFromSpool = running !== null && spoolClearedBy(dir, running);
    }
  }
  if (takeFromSpool && takePrefetched(dir, name, dest, systemId)) return true;
  if (await fetchHere(req, name, dest)) {
    clearFetchFailure(dir, name);
    return true;
  }
  const fetchFailure = readFetchFailure(dir, name);
  if (fetchFailure) {
    // The background fetcher met it damaged or unreadable, and now it is gone: not "the end of the archive".
    throw new PgpitrError('ERR_STORAGE', `WAL file "${name}" could not be fetched (${fetchFailure.message}) and is no longer in the archive`, {
      hint: `${fetchFailure.hint ?? 'find what changed the archive during recovery'}; to end recovery before this file instead, remove ${join(dir, name)}.error`,
    });
  }
  return false;
}

/** The background fetcher's process (--fetcher): runs until no request came for a while, unless another runs. */
export async function runBackgroundFetcher(
  req: ArchiveGetRequest,
  s: { spoolPath: string; getQueueMaxBytes: number; processMax: number },
  answer?: AskAnswerer,
): Promise<void> {
  const { openPrefetchDir, runFetcher } = await import('../archiving/prefetch.js');
  const { runAsOnlyOne } = await import('../archiving/background.js');
  const { FETCHER_LOCK, FETCHER_IDLE_ENV, FETCHER_NICE_ENV, FETCHER_FROM_ENV, FETCHER_FIRST_WINDOW_ENV, FETCHER_PGDATA_ENV, fetcherSettings } = await import('../archiving/prefetch-start.js');
  const { recoveryEndWatch } = await import('../archiving/recovery-ended.js');
  const { noteRequest } = await import('../archiving/prefetch.js');
  const dir = openPrefetchDir(s.spoolPath, req.stanza);
  const nice = Number(process.env[FETCHER_NICE_ENV] ?? 0);
  if (nice > 0) {
    // Every thread: Linux's priorities are per thread; threads started later inherit the main one's.
    const { lowerBackgroundThreadsPriority } = await import('../wal/background-priority.js');
    const { setPriority } = await import('node:os');
    try {
      setPriority(nice);
    } catch {
      /* not allowed: runs at the usual priority */
    }
    lowerBackgroundThreadsPriority(nice);
  }
  await runAsOnlyOne(dir, FETCHER_LOCK, 'archive-get (background fetcher)', fetcherSettings(locations(req.repos), req.stanza, req.systemId, req.followedTimeline ?? null), async (log) => {
    (await import('../archiving/fetcher-cleared.js')).forgetSpoolCleared(dir);
    const after = process.env[FETCHER_FROM_ENV];
    if (after) noteRequest(dir, after); // restore's head start: the window begins after it
    const stanza = await readAnyStanzaWithArchive(req.repos, req.stanza);
    const { followedBranch } = await import('../repo/followed-branch.js');
    // As archive-get judges a request (leftByBranch): across the repositories of this system; when
    // one that may hold the branch's history file (or, following the latest, a newer timeline's)
    // cannot be read, the prefetch pauses (the branch may then lead elsewhere).
    const spans = async () => {
      let passed: Error | null = null;
      const timeline = req.followedTimeline ?? null;
      const b = await followedBranch(req.repos.map((r) => r.repo), req.stanza, timeline, req.systemId, (_r, e) => void (passed ??= e));
      if (b.failed && (b.spans === null || timeline === null)) throw passed ?? new Error('a repository cannot be read');
      return b.spans === null ? null : { spans: b.spans, onBranch: b.onBranch };
    };
    await runFetcher({
      followedSpans: spans,
      repos: req.repos,
      stanza: req.stanza,
      systemId: req.systemId,
      segmentSize: stanza.wal_segment_size,
      dir,
      window: Math.max(1, Math.floor(s.getQueueMaxBytes / stanza.wal_segment_size)),
      processMax: s.processMax,
      idleExitMs: Number(process.env[FETCHER_IDLE_ENV] ?? 10_000),
      ...(process.env[FETCHER_PGDATA_ENV] ? { recoveryEnded: recoveryEndWatch(process.env[FETCHER_PGDATA_ENV]) } : {}),
      firstWindow: process.env[FETCHER_FIRST_WINDOW_ENV] ? Math.max(1, Number(process.env[FETCHER_FIRST_WINDOW_ENV])) : undefined,
      ...(answer ? { answer } : {}),
      log,
    });
  });
}

async function fetchHere(req: ArchiveGetRequest, name: string, dest: string): Promise<boolean> {
  const { from, warnings } = await restoreFromRepositories(req.repos, req.stanza, name, dest, req.systemId);
  for (const w of warnings) req.warn(w);
  return from !== null;
}

/** The fetcher's options: the command's, with the system checked (when not given already). */
function fetcherArgs(optionArgs: string[], systemId: string): string[] {
  if (optionArgs.some((a) => a === '--system-id' || a.startsWith('--system-id='))) return optionArgs;
  return [...optionArgs, `--system-id=${systemId}`];
}

/** The repositories as a fetcher's lock records them (archiving/prefetch-start.ts fetcherSettings). */
export function locations(repos: NumberedRepository[]): { index: number; location: string }[] {
  return repos.map((r) => ({ index: r.index, location: r.repo.location }));
}
