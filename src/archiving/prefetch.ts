// Asynchronous archive-get: a background fetcher keeps the next WAL segments
// recovery will ask for ready in the spool, <spool-path>/<stanza>/archive-get/,
// fetched, decompressed, checked (archive-store.ts fetchWalFile) and synced, so that
// restore_command only has to move one into place (a shell `mv` does it
// without starting Node). The window follows recovery: it starts after the
// segment restore_command last asked for, or after the last prefetched one
// that was taken. Files recovery no longer needs are removed, and everything
// is removed when the fetcher stops after idleExitMs without a request.
// A segment the fetcher could not fetch (damaged, unreadable) gets a
// <segment>.error marker instead, never the segment's name: restore_command
// then fetches it itself and, if it is gone from the archive by then, reports
// the recorded failure rather than "not in the archive". The marker stays
// (also when the fetcher clears the spool) until the segment is fetched.

import { closeSync, copyFileSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { stanzaPath, walFileKind } from '../repo/layout.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { restoreFromRepositories, storedInAny } from '../wal/fetch-from-repositories.js';
import { writeFileAtomicSync } from '../storage/durable.js';
import { markSpoolCleared } from './fetcher-cleared.js';
import { FollowedBranch } from './prefetch-window.js';
import type { BranchView } from './prefetch-window.js';
import { systemIdOfWalFile } from '../postgres/wal-file-system.js';
import { openSpoolDir, failureText, parseFailureText } from './spool.js';
import { processAlive } from '../repo/lock.js';
import { answerAsk, isAskFile, liveAskFile, waitingAsks } from './prefetch-ask.js';
import type { AskAnswerer } from './prefetch-ask.js';

const WANT = 'want';
/** Holds the pid of a fetcher that answers pgpitr-spool-get's requests (prefetch-ask.ts). */
const ANSWERS = 'fetcher.answers';
const FAILED = '.error';

export function prefetchDir(spoolPath: string, stanza: string): string {
  return join(spoolPath, stanzaPath(stanza), 'archive-get');
}

export function openPrefetchDir(spoolPath: string, stanza: string): string {
  return openSpoolDir(spoolPath, prefetchDir(spoolPath, stanza));
}

/** restore_command side: records the segment recovery asked for, so the window follows it. */
export function noteRequest(dir: string, name: string, owner?: { uid: number; gid: number }): void {
  if (walFileKind(name) !== 'segment') return;
  if (owner) {
    // For another user (root for the server's): written by a shell running as that user, so that
    // nothing that user planted in the spool makes root write through a link.
    const r = spawnSync('/bin/sh', ['-c', 'printf "%s" "$1" > "$2.tmp-$$" && mv -f "$2.tmp-$$" "$2"', 'sh', name, join(dir, WANT)], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`could not record the request for ${name} in ${dir} as uid ${owner.uid}`);
    return;
  }
  const tmp = join(dir, `${WANT}.tmp-${process.pid}`);
  writeFileSync(tmp, name);
  renameSync(tmp, join(dir, WANT));
}

/**
 * Moves a prefetched file to `dest`; false if it is not there, or (when `systemId` is known) it
 * is another database system's (left in a spool shared by name by a fetcher killed during an
 * earlier recovery): the caller then fetches the file itself. The file is first claimed under a
 * name of this process's in the spool (one rename, atomic), so that the fetcher, which removes
 * what recovery left behind, cannot remove it while it is copied to another file system.
 */
export function takePrefetched(dir: string, name: string, dest: string, systemId: string | null = null): boolean {
  const src = join(dir, name);
  const claimed = join(dir, `${name}.taking-${process.pid}`);
  try {
    renameSync(src, claimed);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (systemId !== null && !ofSystem(claimed, systemId)) {
    removeQuietly(claimed);
    return false;
  }
  try {
    renameSync(claimed, dest);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') {
      putBack(claimed, src);
      throw e;
    }
  }
  // The spool is on another file system: copied under a temporary name, so that a full disk leaves no partial %p.
  const tmp = `${dest}.pgpitr-tmp`;
  try {
    copyFileSync(claimed, tmp);
    renameSync(tmp, dest);
  } catch (e) {
    removeQuietly(tmp);
    putBack(claimed, src);
    throw e;
  }
  unlinkSync(claimed);
  return true;
}

/** A claimed file that could not be handed over goes back under its name, for the next try. */
function putBack(claimed: string, src: string): void {
  try {
    renameSync(claimed, src);
  } catch {
    removeQuietly(claimed);
  }
}

/** Whether a WAL segment's first page names database system `systemId` (a file too short to tell: no). */
function ofSystem(path: string, systemId: string): boolean {
  return systemIdOfWalFile(path) === systemId;
}

/** The failure the fetcher recorded for a segment; null if none. */
export function readFetchFailure(dir: string, name: string): { message: string; hint?: string } | null {
  let text: string;
  try {
    text = readFileSync(join(dir, name + FAILED), 'utf8');
  } catch {
    return null;
  }
  return parseFailureText(text);
}

/**
 * Forgets every recorded failure of a spool (restore, before the server starts: they were about
 * an earlier recovery's requests, and would make a real end of the archive an error).
 */
export function clearFetchFailures(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.endsWith(FAILED)) removeQuietly(join(dir, n));
}

/** Forgets a recorded failure: the segment was fetched after all. */
export function clearFetchFailure(dir: string, name: string): void {
  removeQuietly(join(dir, name + FAILED));
}

export interface FetcherSettings {
  /** Tried in order for each segment (wal/fetch-from-repositories.ts). */
  repos: NumberedRepository[];
  stanza: string;
  /** The system being recovered: repositories with another system's stanza are not fetched from. */
  systemId?: string | null;
  segmentSize: number;
  dir: string;
  /** Segments kept ahead. */
  window: number;
  /**
   * Segments kept ahead until recovery is seen (a request or a file taken after the start):
   * restore's head start fetches only what the backup needs while restore writes the files.
   */
  firstWindow?: number | undefined;
  /** Files fetched at once. */
  processMax: number;
  idleExitMs: number;
  /** True once the recovery served has ended (recovery-ended.ts; `asked`: a server's restore_command was seen): the fetcher stops without waiting idleExitMs. */
  recoveryEnded?: (asked: boolean) => boolean;
  pollMs?: number;
  /** Answers restore_command's shell (pgpitr-spool-get, prefetch-ask.ts); without it, the shell asks nothing (no fetcher.answers) and runs archive-get. */
  answer?: AskAnswerer;
  /** The branch recovery follows (prefetch-window.ts): the window runs along it. */
  followedSpans?: () => Promise<BranchView | null>;
  log: (line: string) => void;
}

/**
 * Without a request or a segment taken for this long, and with a watcher to wake it, the fetcher
 * polls every IDLE_POLL_MS: never while recovery takes segments (one every 50 ms or so), nor between
 * the end of restore and a server started at once (its first segments are taken by mv, which
 * wakes nothing: only the poll sees them go).
 */
const IDLE_AFTER_MS = 10_000;
const IDLE_POLL_MS = 500;

export async function runFetcher(s: FetcherSettings): Promise<void> {
  const pollMs = s.pollMs ?? 50;
  const fetched = new Set<string>(); // prefetched by us and not yet seen taken
  const missingAt = new Map<string, number>(); // not in the archive (yet), when we looked
  const inFlight = new Map<string, Promise<void>>();
  let base: string | null = null;
  let lastWant = '';
  let lastWantWritten = 0;
  let lastActivity = Date.now();
  let window = Math.min(s.window, s.firstWindow ?? s.window);
  let [stoppedBy, asked] = ['no request for a while', false]; // asked: a server's restore_command asked for a file, or took one
  const answering = new Set<string>();
  // A request of restore_command wakes the loop at once (polling is the fallback).
  let wake: () => void = () => {};
  let watcher: FSWatcher | null = null;
  s.log(`fetcher started: ${s.window} segment(s) ahead, ${s.processMax} at a time`);
  const branch = new FollowedBranch(s.followedSpans, s.log);
  clearSpool(s.dir);
  markSpoolCleared(s.dir);
  try {
    if (s.answer) {
      watcher = watchRequests(s.dir, () => wake());
      // pgpitr-spool-get asks only a fetcher that says it answers (one of an older pgpitr never would).
      writeFileAtomicSync(join(s.dir, ANSWERS), `${process.pid}\n`, false);
    }
    for (;;) {
      // Recovery over: nothing more is fetched; what is in flight or being answered finishes first.
      const ended = s.recoveryEnded?.(asked) === true;
      const request = readWant(s.dir);
      // Every request counts as activity, also one for the segment asked for last.
      const fresh = request !== null && request.writtenMs !== lastWantWritten;
      if (fresh) {
        if (lastWantWritten !== 0) {
          window = s.window; // a request after the first: recovery is there
          asked = true;
        }
        lastWantWritten = request.writtenMs;
        lastActivity = Date.now();
      }
      const want = request?.name ?? null;
      if (want && (want !== lastWant || fresh)) {
        lastWant = want;
        // A new request moves the window there, also backwards: recovery asking for an earlier
        // segment than the fetcher is at is a new recovery (a restore while this fetcher still
        // waited for requests, or a restart), never served by the old window. Also when it names
        // the segment of an earlier request: a restore of the same backup again, after the
        // recovery of the first one moved the window on.
        base = want;
      }
      const present = new Set(readdirSync(s.dir));
      if (s.answer) {
        const answer = s.answer;
        for (const ask of waitingAsks(present)) {
          if (answering.has(ask)) continue;
          answering.add(ask);
          asked = true;
          lastActivity = Date.now();
          // A segment being prefetched is answered from the spool once there (fetchFromArchive takes it).
          void answerAsk(s.dir, ask, async (req, into) => (await inFlight.get(req.name), answer(req, into)), s.log).finally(() => {
            answering.delete(ask);
            lastActivity = Date.now();
          });
        }
      }
      for (const name of [...fetched]) {
        if (!present.has(name) && !inFlight.has(name)) {
          // Taken by restore_command: recovery is at least there.
          fetched.delete(name);
          asked = true;
          lastActivity = Date.now();
          window = s.window;
          if (!base || name > base) base = name;
        }
      }
      if (base && !ended) await branch.refresh(fetched.size > 0);
      if (base && !branch.known) {
        // The branch may now lead elsewhere: nothing fetched along the one known before stays for the shell to hand over.
        for (const name of fetched) {
          if (name !== base && !inFlight.has(name)) {
            removeQuietly(join(s.dir, name));
            fetched.delete(name);
          }
        }
      }
      if (base && branch.known && !ended) {
        const windowNames = branch.nextSegments(base, window, s.segmentSize);
        // The newest segment asked for stays too: its restore_command may be taking it this moment.
        const keep = new Set([base, ...windowNames, ...inFlight.keys()]);
        for (const name of fetched) {
          if (!keep.has(name)) {
            removeQuietly(join(s.dir, name)); // recovery went elsewhere
            fetched.delete(name);
          }
        }
        for (const name of windowNames) {
          if (inFlight.size >= s.processMax) break;
          if (fetched.has(name) || inFlight.has(name)) continue;
          const missed = missingAt.get(name);
          if (missed !== undefined && Date.now() - missed < 1000) break; // not archived yet: nothing after it either
          inFlight.set(
            name,
            fetchOne(s, name).then((found) => {
              inFlight.delete(name);
              if (found) {
                fetched.add(name);
                missingAt.delete(name);
              } else missingAt.set(name, Date.now());
            }),
          );
          if (missingAt.has(name)) break;
        }
      }
      if (inFlight.size === 0 && answering.size === 0 && Date.now() - lastActivity >= s.idleExitMs) break;
      if (ended && inFlight.size === 0 && answering.size === 0) {
        stoppedBy = 'the recovery it served ended (no recovery.signal or standby.signal in the data directory)';
        break;
      }
      // Idle (nothing asked or taken for a while, nothing in flight) with a watcher to wake it: polled less
      // often (a fetcher left after recovery ended spent 6-7% of a core polling until it exited).
      const idle = watcher !== null && inFlight.size === 0 && answering.size === 0 && Date.now() - lastActivity >= IDLE_AFTER_MS;
      await Promise.race([sleep(idle ? Math.max(pollMs, IDLE_POLL_MS) : pollMs), new Promise<void>((resolve) => (wake = resolve)), ...inFlight.values()]);
    }
  } finally {
    watcher?.close();
    removeQuietly(join(s.dir, ANSWERS));
  }
  clearSpool(s.dir);
  s.log(`fetcher stopped: ${stoppedBy}; prefetched files removed`);
}

async function fetchOne(s: FetcherSettings, name: string): Promise<boolean> {
  const final = join(s.dir, name);
  const tmp = join(s.dir, `${name}.fetching`);
  try {
    const { from, warnings } = await restoreFromRepositories(s.repos, s.stanza, name, tmp, s.systemId);
    for (const w of warnings) s.log(`warning: ${w}`);
    if (from === null) return false;
    // Synced before it gets its name: restore_command hands it to recovery as is.
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    clearFetchFailure(s.dir, name);
    s.log(`prefetched ${name}`);
    return true;
  } catch (e) {
    removeQuietly(tmp);
    s.log(`error: ${name}: ${(e as Error).message}`);
    // Only a file the archive holds and that could not be read or verified is recorded: an error
    // about the repository itself (briefly unmounted) says nothing about this segment, and a
    // marker for a segment past the archive's end would turn its "not found" into a failure.
    if (await storedInAny(s.repos, s.stanza, name)) recordFailure(s.dir, name, e as Error);
    return false; // restore_command fetches it itself and reports the error
  }
}

function recordFailure(dir: string, name: string, e: Error & { hint?: string }): void {
  try {
    writeFileAtomicSync(join(dir, name + FAILED), failureText(e), false);
  } catch {
    // restore_command still fetches the segment itself and meets the failure
  }
}


function readWant(dir: string): { name: string; writtenMs: number } | null {
  try {
    const path = join(dir, WANT);
    const writtenMs = statSync(path).mtimeMs;
    const name = readFileSync(path, 'utf8').trim();
    return name ? { name, writtenMs } : null;
  } catch {
    return null;
  }
}

function clearSpool(dir: string): void {
  for (const name of readdirSync(dir)) {
    // A request being written (want.tmp-PID, renamed to want in a moment) is left alone too.
    if (name.endsWith('.lock') || name.endsWith('.log') || name.endsWith(FAILED) || name === WANT || name.startsWith(`${WANT}.tmp-`)) continue;
    // A request of a live restore_command (pgpitr-spool-get), or its answer, is its shell's.
    if (isAskFile(name) && liveAskFile(name)) continue;
    // A file a live restore_command claimed (takePrefetched) is being handed over.
    const taker = /\.taking-(\d+)$/.exec(name)?.[1];
    if (taker !== undefined && processAlive(Number(taker))) continue;
    removeQuietly(join(dir, name));
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

/** Calls `wake` when a request (ask.PID-RANDOM, want) appears in `dir`; null where the file system cannot tell (polling then). */
function watchRequests(dir: string, wake: () => void): FSWatcher | null {
  try {
    const w = watch(dir, (_event, file) => {
      if (file === WANT || (typeof file === 'string' && waitingAsks([file]).length > 0)) wake();
    });
    w.on('error', () => w.close());
    w.unref(); // the loop's own timers keep the process alive, never the watcher
    return w;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
