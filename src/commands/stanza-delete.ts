// `pgpitr stanza-delete`: removes a stanza, its backups and its WAL archive
// from a repository, under the repository lock and the stanza's backup lock
// (no backup or expire runs meanwhile). Without force it only counts what
// would go. The stanza record goes first, durably: from then on every command
// sees no stanza (archive-get exits 200, which stops a recovery rather than
// ending it early; archive-push fails and PostgreSQL keeps the WAL), then the
// stanza's directory with everything in it. A stanza directory left without
// its record (a delete interrupted) is finished by the next stanza-delete.

import { PgpitrError } from '../common/errors.js';
import { scanArchive } from '../repo/archive-store.js';
import { listRecords } from '../repo/backup-set/record.js';
import { backupLockPath, REPOSITORY_LOCK, stanzaPath, stanzaRecordPath } from '../repo/layout.js';
import { RepoLock } from '../repo/lock.js';
import { checkRepository, readStanza } from '../repo/stanza.js';
import type { Repository } from '../repo/repository.js';

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

export async function stanzaDelete(repo: Repository, stanza: string, force: boolean): Promise<{ deleted: boolean; contents: StanzaContents }> {
  await checkRepository(repo);
  const dir = stanzaPath(stanza);
  const repoLock = await RepoLock.acquire(repo.storage, REPOSITORY_LOCK, 'stanza-delete');
  try {
    const recorded = (await repo.storage.info(stanzaRecordPath(stanza))) !== null;
    if (!recorded && (await repo.storage.list(dir, { detail: false })).length === 0) {
      throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" does not exist in repository "${repo.location}"`, { hint: 'pgpitr info lists the stanzas of the repository' });
    }
    const lock = await RepoLock.acquire(repo.storage, backupLockPath(stanza), 'stanza-delete');
    let released = false;
    try {
      const contents = await inventory(repo, stanza, recorded);
      if (!force) return { deleted: false, contents };
      await repo.storage.remove(stanzaRecordPath(stanza));
      await repo.storage.pathSync?.(dir);
      // Everything else, the lock just taken included.
      await repo.storage.remove(dir, { recursive: true });
      released = true;
      return { deleted: true, contents };
    } finally {
      if (!released) await lock.release();
    }
  } finally {
    await repoLock.release();
  }
}

async function inventory(repo: Repository, stanza: string, recorded: boolean): Promise<StanzaContents> {
  const info = recorded ? await readStanza(repo, stanza) : null;
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
