// receive-wal's lock on its directory (.receive-wal.lock: pid, host, command), touched while held
// (storage/posix/lock-heartbeat.ts). A second receiver on the directory is refused.

import { join } from 'node:path';
import { RepoLock, SPOOL_LOCK_STALE_MS } from '../repo/lock.js';
import { PgpitrError } from '../common/errors.js';
import { PosixStorage } from '../storage/posix/posix-storage.js';
import { touchWhileHeld } from '../storage/posix/lock-heartbeat.js';

const LOCK = '.receive-wal.lock';

/** Takes the lock on `dir` (throws ERR_TARGET, exit 5, when another receive-wal holds it); returns its release. */
export async function holdReceiverLock(dir: string): Promise<() => Promise<void>> {
  let lock: RepoLock;
  try {
    lock = await RepoLock.acquire(new PosixStorage(dir), LOCK, 'receive-wal', undefined, `receive-wal directory ${dir}`, { unjudgedStaleAfterMs: SPOOL_LOCK_STALE_MS });
  } catch (e) {
    if (e instanceof PgpitrError && e.code === 'ERR_TARGET') {
      throw new PgpitrError('ERR_TARGET', e.message, { hint: 'one receive-wal per directory (and per stanza): stop the other one first, or give this one its own directory (-D) or stanza' });
    }
    throw e;
  }
  const stopTouching = touchWhileHeld(join(dir, LOCK));
  return async () => {
    stopTouching();
    await lock.release();
  };
}
