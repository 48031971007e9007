// The archive_command side of asynchronous archive-push: answer from the
// spool's marker for this file, starting the background pusher when it is not
// running (and storing this file meanwhile) and waiting for it when the file
// has not been dealt with yet.

import { basename } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import type { ErrorCode } from '../common/errors.js';
import { holderIsHere, liveLockHolder, SPOOL_LOCK_STALE_MS } from '../repo/lock.js';
import { clusterStopped } from '../postgres/postmaster-pid.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import { PushSpool, parseFailureText } from './spool.js';
import type { Marker } from './spool.js';
import { startDetached } from './background.js';

export const PUSHER_LOCK = 'pusher';

export interface AsyncPushRequest {
  /** %p as PostgreSQL gives it (relative to the data directory, the working directory). */
  walPath: string;
  /** The directory of %p, resolved: whose files this spool's markers must answer for (spool.ts recordPgWal). */
  pgWal: string;
  spool: PushSpool;
  timeoutMs: number;
  /** Starts the background pusher (a detached process) with its output appended to `logPath`. */
  startPusher: (logPath: string) => void;
  /** The pusher's settings as this call would start it; a pusher running with others is asked to stop. */
  settings: string[];
  /**
   * The repositories this call archives to, as a pusher records them (`repoN LOCATION`): markers
   * written while the spool recorded others (archive_command changed while a pusher was not
   * running to see it: a crash, then a repository added) answer nothing until a pusher with
   * these has started and forgotten what no longer holds.
   */
  repositories: string[];
  /**
   * Stores this call's own file (as archive-push without --archive-async does). Used by
   * the call that starts the pusher, while the pusher starts: a Node start-up and its
   * modules take ~200 ms before it stores anything, which every backlog would wait.
   */
  storeHere?: () => Promise<void>;
}

export type AsyncPushResult = { kind: 'ok' } | { kind: 'dropped'; message: string };

export async function pushThroughSpool(req: AsyncPushRequest): Promise<AsyncPushResult> {
  const name = basename(req.walPath);
  const deadline = Date.now() + req.timeoutMs;
  // Markers of another cluster's pusher (a spool shared by mistake) answer nothing here.
  const read = () => {
    const owner = req.spool.pgWalOwner();
    if (owner !== null && owner !== req.pgWal) return null;
    const recorded = req.spool.recordedRepositories();
    if (recorded !== null && JSON.stringify(recorded) !== JSON.stringify(req.repositories)) return null;
    return req.spool.read(name, req.walPath);
  };
  let marker = read();
  // A failure is answered only after making sure a pusher with our settings will retry it.
  if (marker?.kind === 'error') await ensurePusher(req);
  if (!marker && req.storeHere && (await ensurePusher(req))) {
    // The pusher starts on the files after ours, and finds ours marked. (Should it
    // start past the queue limit and drop ours meanwhile, the drop record names a
    // file that is nonetheless archived: a gap reported that is not there, never
    // the reverse.)
    const readAt = Date.now() + 1; // as archive-wal-file.ts readAtMs
    await req.storeHere();
    // The pusher this call started may not have claimed the spool yet: a marker here must answer for our pg_wal.
    req.spool.claimFor(req.pgWal);
    req.spool.write(name, 'ok', '', readAt);
    return { kind: 'ok' };
  }
  let lastLivenessCheck = 0;
  let delay = 5;
  let started = false;
  while (!marker) {
    if (started) {
      const fatal = req.spool.readFatal();
      if (fatal !== null) {
        const { message, hint, code } = parseFailureText(fatal);
        throw new PgpitrError(carried(code), `the asynchronous archive-push pusher stopped: ${message}`, { hint: hint ?? `see ${req.spool.logPath}` });
      }
    }
    if (Date.now() - lastLivenessCheck >= 1000) {
      started = (await ensurePusher(req)) || started;
      lastLivenessCheck = Date.now();
    }
    if (Date.now() >= deadline) {
      throw new PgpitrError('ERR_STORAGE', `timed out after ${Math.round(req.timeoutMs / 1000)} s waiting for the asynchronous archive-push to store "${name}"`, {
        hint: `see ${req.spool.logPath}; PostgreSQL retries the file, and archive-timeout sets the wait`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(50, delay * 2);
    marker = read();
  }
  return answer(req.spool, name, marker);
}

function answer(spool: PushSpool, name: string, marker: Marker): AsyncPushResult {
  switch (marker.kind) {
    case 'ok':
      return marker.message === 'dropped' ? { kind: 'dropped', message: `WAL segment "${name}" was dropped without archiving (archive-push-queue-max)` } : { kind: 'ok' };
    case 'dropped':
      return { kind: 'dropped', message: marker.message };
    case 'error': {
      // Removing the marker lets the pusher try again; PostgreSQL calls us again.
      spool.remove(name);
      const { message, hint, code } = parseFailureText(marker.message);
      throw new PgpitrError(carried(code), `asynchronous archive-push could not store "${name}": ${message}`, hint ? { hint } : {});
    }
  }
}

/** The pusher's failure's code, for archive_command's exit code as a synchronous push would give it (docs/exit-codes.md). */
function carried(code: string | undefined): ErrorCode {
  const known: readonly string[] = ['ERR_CONNECTION', 'ERR_CONNECTION_LOST', 'ERR_TARGET', 'ERR_CHECK', 'ERR_USAGE', 'ERR_NOT_FOUND'];
  return code !== undefined && known.includes(code) ? (code as ErrorCode) : 'ERR_STORAGE';
}

/** Starts the pusher unless one runs; true if this call started it. */
async function ensurePusher(req: AsyncPushRequest): Promise<boolean> {
  const holder = await liveLockHolder(new PosixStorage(req.spool.dir), `${PUSHER_LOCK}.lock`, { unjudgedStaleAfterMs: SPOOL_LOCK_STALE_MS });
  if (holder) {
    const owner = req.spool.pgWalOwner();
    if (owner !== null && owner !== req.pgWal) {
      // A failover on one host: the old primary is stopped and its pusher stores what that server
      // left ready (never stopped: nothing else would store it; the new primary did not mark it
      // ready), then exits at once (pusher.ts); ours starts then. Waited for, not a failure.
      // Judged only for a pusher beyond doubt of this host and pid namespace, as its server then is.
      if (holderIsHere(holder) && clusterStopped(owner)) return false;
      throw new PgpitrError('ERR_USAGE', `the archive-push spool "${req.spool.dir}" is in use by the pusher (pid ${holder.pid}) of another cluster, whose WAL is in ${owner}`, {
        hint: 'two clusters archive with one stanza name and one spool-path: give each its own --spool-path (spool-path in the configuration file) in archive_command',
      });
    }
    // archive_command changed (a new queue limit, another repository...): the running
    // pusher finishes what it is storing and exits; the next check starts ours.
    // Signalled only when its pid is beyond doubt that pusher (a reboot or a container may have
    // given the pid to another process); otherwise the settings wait for it to restart.
    if (holderIsHere(holder) && JSON.stringify(holder.settings ?? []) !== JSON.stringify(req.settings)) {
      try {
        process.kill(holder.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    return false;
  }
  req.spool.clearFatal();
  req.startPusher(req.spool.logPath);
  return true;
}

/** Starts `pgpitr archive-push --pusher=PG_WAL ...` detached from this process. */
export function spawnPusher(optionArgs: string[], pgWal: string, logPath: string): void {
  startDetached(['archive-push', ...optionArgs, `--pusher=${pgWal}`], logPath);
}
