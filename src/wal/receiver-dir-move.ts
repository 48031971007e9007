// receive-wal into an encrypted posix repository keeps what it receives in the spool (the files are
// written as received, in plaintext). Before 2026-12-06 it kept them in the repository's
// <stanza>/receive-wal: whole segments not stored yet and the .partial being received, which may be
// the only copy left (the slot moved past them). Moved into the new directory at the first start,
// under the old directory's lock (an older receive-wal still running there is refused).

import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { fsyncPathSync } from '../storage/durable.js';
import { holdReceiverLock } from './receiver-lock.js';

export async function moveReceivedFiles(oldDir: string, newDir: string, log: (line: string) => void): Promise<void> {
  if (!existsSync(oldDir)) return;
  const release = await holdReceiverLock(oldDir);
  let moved = 0;
  try {
    const names = readdirSync(oldDir).filter((n) => !n.startsWith('.receive-wal.lock'));
    if (names.length > 0) mkdirSync(newDir, { recursive: true, mode: 0o700 });
    for (const name of names) {
      const to = join(newDir, name);
      if (existsSync(to)) {
        throw new PgpitrError('ERR_TARGET', `receive-wal's files are kept in ${newDir} now (the repository is encrypted), and both it and ${oldDir} hold ${name}`, {
          hint: `keep the longer (or the one of the newer run) in ${newDir}, remove the other, then start receive-wal again`,
        });
      }
      try {
        renameSync(join(oldDir, name), to);
      } catch (e) {
        throw new PgpitrError('ERR_TARGET', `could not move ${join(oldDir, name)} to ${newDir}: ${(e as Error).message}`, {
          hint: `move the files of ${oldDir} into ${newDir} by hand (mv), then start receive-wal again`,
          cause: e,
        });
      }
      moved++;
    }
    if (moved > 0) {
      fsyncPathSync(newDir);
      fsyncPathSync(oldDir);
    }
  } finally {
    await release();
  }
  try {
    rmdirSync(oldDir);
  } catch {
    /* a file put there meanwhile: left, said at the next start */
  }
  if (moved > 0) log(`warning: moved ${moved} file(s) receive-wal had received from ${oldDir} (in the repository, in plaintext) to ${newDir}: with an encrypted repository they are kept in the spool`);
}
