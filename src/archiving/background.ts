// Starting the background processes of asynchronous archiving (the pusher and
// the fetcher): pgpitr itself, detached, its output appended to a log in the
// spool that is rotated past 16 MiB.

import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RepoLock, SPOOL_LOCK_STALE_MS } from '../repo/lock.js';
import { PgpitrError } from '../common/errors.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import { LOCK_HEARTBEAT_MS, touchWhileHeld } from '../storage/posix/lock-heartbeat.js';

const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

/** How a background process is started: as another user (the server's, when pgpitr runs as root), with more environment. */
export interface DetachedOptions {
  owner?: { uid: number; gid: number };
  env?: Record<string, string>;
}

export function startDetached(args: string[], logPath: string, o: DetachedOptions = {}): void {
  const env = o.env ? { ...process.env, ...o.env } : process.env;
  if (o.owner) {
    // Root starting it for the server's user touches nothing in the spool, which that user owns: a
    // link planted there would make root write through it. The shell, as that user, opens the log.
    const child = spawn('/bin/sh', ['-c', 'exec "$@" >> "$PGPITR_BACKGROUND_LOG" 2>&1', 'sh', process.execPath, process.argv[1]!, ...args], {
      detached: true,
      stdio: 'ignore',
      uid: o.owner.uid,
      gid: o.owner.gid,
      env: { ...env, PGPITR_BACKGROUND_LOG: logPath },
    });
    child.once('error', () => {}); // not started: whoever needs it next starts it again
    child.unref();
    return;
  }
  try {
    if (statSync(logPath).size > LOG_ROTATE_BYTES) renameSync(logPath, `${logPath}.1`);
  } catch {
    /* no log yet */
  }
  // Never through a link (a log is appended to: a link would append to whatever it names).
  const fd = openSync(logPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o640);
  try {
    const child = spawn(process.execPath, [process.argv[1]!, ...args], { detached: true, stdio: ['ignore', fd, fd], env });
    child.once('error', () => {}); // not started: whoever needs it next starts it again
    child.unref();
  } finally {
    closeSync(fd);
  }
}

export type BackgroundLog = (line: string) => void;

/**
 * Runs `body` as the one background process of its kind for a spool directory:
 * holds `<dir>/<lockName>.lock` meanwhile (with `settings`, for archive_command
 * to compare), logs with time and pid, and logs a failure before passing it on.
 * Returns false, doing nothing, when another process holds the lock; throws when the lock cannot
 * be written at all.
 */
export async function runAsOnlyOne(
  dir: string,
  lockName: string,
  command: string,
  settings: string[] | undefined,
  body: (log: BackgroundLog) => Promise<void>,
  heartbeatMs = LOCK_HEARTBEAT_MS,
): Promise<boolean> {
  let lock: RepoLock;
  try {
    lock = await RepoLock.acquire(new PosixStorage(dir), `${lockName}.lock`, command, settings, 'spool', { unjudgedStaleAfterMs: SPOOL_LOCK_STALE_MS });
  } catch (e) {
    // Held by another process: nothing to do. Anything else (the spool full, read-only, not
    // writable) is this process's failure, passed on for the caller to record.
    if (e instanceof PgpitrError && e.code === 'ERR_TARGET') return false;
    throw e;
  }
  const stopTouching = touchWhileHeld(join(dir, `${lockName}.lock`), heartbeatMs);
  const log: BackgroundLog = (line) => process.stdout.write(`${new Date().toISOString()} [${process.pid}] ${line}\n`);
  try {
    await body(log);
    return true;
  } catch (e) {
    log(`${lockName} failed: ${(e as Error).message}`);
    throw e;
  } finally {
    stopTouching();
    await lock.release();
  }
}
