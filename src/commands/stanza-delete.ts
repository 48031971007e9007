// `pgpitr stanza-delete`: removes a stanza, its backups and its WAL archive
// from a repository, under the repository lock and the stanza's backup lock
// (no backup or expire runs meanwhile). Without force it only counts what
// would go. The stanza record goes first, durably: from then on every command
// sees no stanza (archive-get exits 200, which stops a recovery rather than
// ending it early; archive-push fails and PostgreSQL keeps the WAL), then the
// stanza's directory with everything in it. A stanza directory left without
// its record (a delete interrupted) is finished by the next stanza-delete.
// Between the record and the rest it waits for the processes that trust a
// record they saw a moment ago (repo/stanza-presence.ts) to see it gone, and
// files that still appear after are reported, not hidden. A recovery restored from the stanza that
// may not have ended (restore-lease.ts) refuses the delete unless it is said to be abandoned.

import { PgpitrError } from '../common/errors.js';
import { liveLeases, whileExpiring } from '../repo/restore-lease.js';
import { recoveryPending } from '../postgres/recovery-signals.js';
import { scanArchive } from '../repo/archive-store.js';
import { listRecords } from '../repo/backup-set/record.js';
import { backupLockPath, REPOSITORY_LOCK, stanzaPath, stanzaRecordPath } from '../repo/layout.js';
import { RepoLock } from '../repo/lock.js';
import { checkRepository, readStanza } from '../repo/stanza.js';
import type { Repository } from '../repo/repository.js';
import { PRESENCE_TRUST_MS } from '../repo/stanza-presence.js';

/**
 * What a stanza's directory holds (layout.ts): its record, archive, drops, backups, lock and
 * takeover guard, receive-wal's directory (a posix repository it streams into), and their
 * temporary names.
 */
const STANZA_ENTRY = /^(?:stanza\.json|archive|archive-drops|archive-expired\.json|restore-points|restore-lease|backup|backup\.lock(?:\.takeover\.lock)?|receive-wal)(?:\.tmp-[^/]+)?$/;

export interface StanzaContents {
  /** False: the record was already gone (an interrupted delete), only the rest remained. */
  recorded: boolean;
  system_identifier: string | null;
  pg_major: number | null;
  backups: string[];
  wal_files: number;
  wal_bytes: number;
  last_archived: string | null;
}

export async function stanzaDelete(repo: Repository, stanza: string, force: boolean, abandonRecoveries = false): Promise<{ deleted: boolean; contents: StanzaContents; advisoryLocks: boolean; recoveries: string[] }> {
  await checkRepository(repo);
  const dir = stanzaPath(stanza);
  // Without --force it only counts: no lock taken (a backup starting meanwhile is not refused,
  // and a repository this user may only read can be looked at).
  if (!force) {
    const recorded = await stanzaRecorded(repo, stanza, dir);
    const recoveries = (await liveLeases(repo.storage, stanza, { recoveryPending })).filter((l) => !l.running).map((l) => l.holder);
    return { deleted: false, contents: await inventory(repo, stanza, recorded), advisoryLocks: false, recoveries };
  }
  const repoLock = await RepoLock.acquire(repo.storage, REPOSITORY_LOCK, 'stanza-delete');
  try {
    const recorded = await stanzaRecorded(repo, stanza, dir);
    const lock = await RepoLock.acquire(repo.storage, backupLockPath(stanza), 'stanza-delete', undefined, `stanza "${stanza}"`);
    let released = false;
    try {
      const contents = await inventory(repo, stanza, recorded);
      // A restore reading a backup now would fail half-way, a --delta target half rewritten. The
      // marker first: a restore that takes its lease after this look finds it (restore-lease.ts).
      // The record goes under the marker (a restore then finds it gone: refused); the rest after.
      // Restores that ended, whose recovery may still fetch WAL from the stanza: said (it will fail there, exit 200).
      let recoveries: string[] = [];
      await whileExpiring(repo.storage, stanza, async () => {
        const leases = await liveLeases(repo.storage, stanza, { recoveryPending });
        recoveries = leases.filter((l) => !l.running).map((l) => l.holder);
        const restoring = leases.find((l) => l.running);
        if (restoring) {
          throw new PgpitrError('ERR_TARGET', `stanza "${stanza}" is being restored from: ${restoring.holder} reads backup ${restoring.backup}`, {
            hint: 'wait for that restore to end (or stop it), then run stanza-delete --force again',
          });
        }
        // A recovery that may still fetch WAL from the stanza (a standby's never ends) would stop
        // at its next restore_command: refused unless said to be abandoned (or the record is gone
        // already: an interrupted delete, which every restore_command sees as no stanza).
        if (recoveries.length > 0 && !abandonRecoveries && contents.recorded) {
          throw new PgpitrError('ERR_TARGET', `stanza "${stanza}" may still be needed by a recovery restored from it: ${recoveries.join('; ')}`, {
            hint: "let that recovery end (a standby's ends only when it is promoted), or point its restore_command elsewhere; if that directory is gone or its recovery is no longer wanted, give --abandon-recoveries as well: its restore_command then fails (exit 200) and recovery stops",
          });
        }
        await repo.storage.remove(stanzaRecordPath(stanza));
        await repo.storage.pathSync?.(dir);
      }, 'stanza-delete');
      await removeStanza(repo, stanza, dir, contents.recorded);
      released = true; // removed with the stanza's directory (a failure above: release() removes it if still there)
      return { deleted: true, contents, advisoryLocks: lock.advisory, recoveries };
    } finally {
      if (!released) await lock.release();
    }
  } finally {
    await repoLock.release();
  }
}

/**
 * Whether the stanza has its record; without one, whether its directory is what an interrupted
 * stanza-delete left (finished then), else refused: nothing there, or not a stanza's.
 */
async function stanzaRecorded(repo: Repository, stanza: string, dir: string): Promise<boolean> {
  if ((await repo.storage.info(stanzaRecordPath(stanza))) !== null) return true;
  const entries = await repo.storage.list(dir, { detail: false });
  if (entries.length === 0) {
    throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" does not exist in repository "${repo.location}"`, { hint: 'pgpitr info lists the stanzas of the repository' });
  }
  // Finished as an interrupted delete only when it holds nothing but what a stanza holds: a
  // directory of the repository that never was a stanza (another repository below this one,
  // the user's own files) is never removed because its name was given.
  const foreign = entries.filter((e) => !STANZA_ENTRY.test(e.name));
  if (foreign.length > 0) {
    throw new PgpitrError('ERR_TARGET', `"${dir}" in repository "${repo.location}" has no stanza record and holds what no stanza holds (${foreign.slice(0, 3).map((e) => e.name).join(', ')}${foreign.length > 3 ? ', ...' : ''}): it is not a stanza, and is left alone`, {
      hint: 'pgpitr info lists the stanzas of the repository; remove that directory yourself if it is no longer needed',
    });
  }
  return false;
}

/** After the record (from then on no command takes it for a stanza): everything else, the lock included. */
async function removeStanza(repo: Repository, stanza: string, dir: string, recorded: boolean): Promise<void> {
  // A pusher or receive-wal still storing into the stanza trusts a record it saw for
  // PRESENCE_TRUST_MS: past twice that, each has seen it gone and stores nothing more.
  if (recorded) await new Promise((r) => setTimeout(r, 2 * PRESENCE_TRUST_MS));
  // Everything else, the lock just taken included.
  await repo.storage.remove(dir, { recursive: true });
  // (A lock is no stored data: a backup or expire that took one meanwhile fails on the record.)
  const left = (await repo.storage.list(dir, { recursive: true, detail: false })).filter((e) => e.type === 'file' && !e.name.endsWith('.lock'));
  if (left.length > 0) {
    throw new PgpitrError('ERR_TARGET', `stanza "${stanza}" was deleted, but ${left.length} file(s) appeared in its directory meanwhile (${left[0]!.name}${left.length > 1 ? ', ...' : ''})`, {
      hint: 'something still stores into it (an archive_command, an asynchronous pusher, receive-wal): stop it, then run stanza-delete --force again',
    });
  }
}

async function inventory(repo: Repository, stanza: string, recorded: boolean): Promise<StanzaContents> {
  // A damaged record must not keep a stanza from being deleted: what it says is only shown.
  const info = recorded ? await readStanza(repo, stanza).catch(() => null) : null;
  const scan = await scanArchive(repo, stanza);
  const last = scan.files.reduce<number | null>((a, f) => (a === null || f.mtimeMs > a ? f.mtimeMs : a), null);
  const backups = (await listRecords(repo.storage, stanza)).map((r) => r.id);
  return {
    recorded,
    system_identifier: info?.system_identifier ?? null,
    pg_major: info?.pg_major ?? null,
    backups,
    wal_files: scan.files.length,
    wal_bytes: scan.files.reduce((a, f) => a + f.size, 0),
    last_archived: last === null ? null : new Date(last).toISOString(),
  };
}
