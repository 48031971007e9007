// Starting the background processes of asynchronous archiving (the pusher and
// the fetcher): pgpitr itself, detached, its output appended to a log in the
// spool that is rotated past 16 MiB.

import { spawn } from 'node:child_process';
import { closeSync, openSync, renameSync, statSync } from 'node:fs';

const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

export function startDetached(args: string[], logPath: string): void {
  try {
    if (statSync(logPath).size > LOG_ROTATE_BYTES) renameSync(logPath, `${logPath}.1`);
  } catch {
    /* no log yet */
  }
  const fd = openSync(logPath, 'a', 0o640);
  try {
    spawn(process.execPath, [process.argv[1]!, ...args], { detached: true, stdio: ['ignore', fd, fd] }).unref();
  } finally {
    closeSync(fd);
  }
}
