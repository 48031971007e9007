// `pgpitr expire`: retention of a stanza's backups and WAL under the stanza's
// backup lock (repo/retention.ts decides, repo/expire.ts carries it out), and
// pinning: a pinned backup is kept whatever the policy says (standalone: with
// only the WAL that makes it consistent). `backup` applies
// retention through expireUnderLock after a successful backup.

import { PgpitrError } from '../common/errors.js';
import { readStanza } from '../repo/stanza.js';
import { backupLockPath } from '../repo/layout.js';
import { enforcedAndFree, liveLockHolder, RepoLock } from '../repo/lock.js';
import { ensureStanzaPresent } from '../repo/stanza-presence.js';
import { ADVISORY_LOCKS_WARNING } from '../repo/conditional-create.js';
import { expireStanza } from '../repo/expire.js';
import type { ExpireResult, ExpireWhat } from '../repo/expire.js';
import { readRecord, writeRecord } from '../repo/backup-set/record.js';
import type { Repository } from '../repo/repository.js';
import type { PinTarget } from '../repo/retention.js';
import { recoveryPending } from '../postgres/recovery-signals.js';

/** Applies a retention policy to the stanza, or expires one backup set (with dryRun, only says what it would remove). */
export async function expireUnderLock(repo: Repository, stanza: string, what: ExpireWhat, opts: { dryRun: boolean; warn?: (message: string) => void; removed?: (id: string, why: string) => void }): Promise<ExpireResult> {
  const info = await readStanza(repo, stanza);
  // A dry run writes nothing, not even a lock: it works on a read-only repository and beside a running
  // backup. With the lock free (and enforced), a record saying "running" is a dead run's, as expire judges it.
  if (opts.dryRun) {
    const exclusive = await enforcedAndFree(repo.storage, backupLockPath(stanza)).catch(() => false);
    // What the real run would meet now: refused while another command holds the stanza's lock.
    const holder = await liveLockHolder(repo.storage, backupLockPath(stanza)).catch(() => null);
    if (holder) opts.warn?.(`${repo.location}: the stanza is locked by "${holder.command}" (pid ${holder.pid} on ${holder.host}): expire without --dry-run is refused until it ends`);
    return expireStanza(repo, stanza, info.wal_segment_size, what, { dryRun: true, exclusive, recoveryPending });
  }
  const lock = await RepoLock.acquire(repo.storage, backupLockPath(stanza), 'set' in what ? 'expire --set' : 'expire', undefined, `stanza "${stanza}"`);
  if (lock.advisory) opts.warn?.(`${repo.location}: ${ADVISORY_LOCKS_WARNING}`);
  try {
    await ensureStanzaPresent(repo, info, { fresh: true }); // a stanza-delete between the read and the lock
    return await expireStanza(repo, stanza, info.wal_segment_size, what, { dryRun: false, exclusive: lock.enforced, recoveryPending, ...(opts.removed ? { removed: opts.removed } : {}) });
  } finally {
    await lock.release();
  }
}

/** Pins (or unpins) complete backup `id`; `target`: what the pin keeps besides it (default 'full'). Resolves with whether it was pinned before. */
export async function setPinned(repo: Repository, stanza: string, id: string, pinned: boolean, target: PinTarget = 'full'): Promise<boolean> {
  // Under the backup lock: a running backup rewrites its record at the end.
  const lock = await RepoLock.acquire(repo.storage, backupLockPath(stanza), pinned ? 'expire --pin' : 'expire --unpin', undefined, `stanza "${stanza}"`);
  try {
    await readStanza(repo, stanza); // under the lock: a stanza-delete may have run before it
    const r = await readRecord(repo.storage, stanza, id);
    if (!r) throw new PgpitrError('ERR_NOT_FOUND', `backup "${id}" does not exist in stanza "${stanza}"`, { hint: 'pgpitr info lists the backups' });
    if (r.state !== 'complete') throw new PgpitrError('ERR_TARGET', `backup "${id}" is ${r.state}, not complete: only a complete backup can be pinned`);
    const was = r.pinned;
    // Nothing to change for an unpin of a backup that is not pinned (said so by the caller).
    if (!pinned && !was) return false;
    r.pinned = pinned;
    if (pinned && target === 'standalone') r.pin_target = target;
    else delete r.pin_target;
    await writeRecord(repo.storage, r);
    return was;
  } finally {
    await lock.release();
  }
}
