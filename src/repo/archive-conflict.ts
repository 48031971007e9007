// A WAL file pushed under a name the archive holds with other content.
//
// One case is not a conflict: the segment in which a promotion ended a timeline,
// pushed under its full name by a server that followed the promotion (a
// cascading standby with archive_mode=always marks it ready when it switches
// timeline), while the archive holds that name from the old primary, which went
// on writing the old timeline after the failover (split brain): the two differ
// past the fork. When the pushed content is, byte for byte, the `.partial` the
// promoted server archived, nothing of it is missing from the archive: the push
// is answered as archived and the old primary's copy stays (the old timeline as
// that server wrote it, which recovery along that timeline reads). Refused, it
// held the standby's archiver forever and filled its pg_wal (black-box run S).
//
// The other way round (the old primary pushing its copy after the standby's was
// stored) stays refused, with a hint that says what happened.

import { PgpitrError } from '../common/errors.js';
import { storageJoin } from '../storage/storage-path.js';
import type { StorageEntry } from '../storage/storage.js';
import { parseStoredName, walFileKind } from './layout.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

/** A stored copy of a WAL file (archive-store.ts). */
export interface StoredCopy {
  stored: string;
  sha256: string;
}

/**
 * For a push of `name` whose content (`digest`) differs from the archived copy `other`: the path of
 * the archived `.partial` with that same content, or a refusal. `entries`: the listing of `dir` the
 * push made (the whole directory where directories are real; else listed again here).
 */
export async function partialOrRefusal(repo: Repository, dir: string, name: string, digest: string, entries: StorageEntry[], other: StoredCopy): Promise<string> {
  const partials: StoredCopy[] = [];
  if (walFileKind(name) === 'segment') {
    const prefix = `${name}.partial-`;
    const listed = repo.storage.features.directories ? entries : await repo.storage.list(dir, { detail: false, prefix });
    for (const e of listed) {
      const parsed = e.name.startsWith(prefix) ? parseStoredName(e.name) : null;
      if (parsed && parsed.name === `${name}.partial`) partials.push({ stored: e.name, sha256: parsed.sha256 });
    }
  }
  const same = partials.find((c) => c.sha256 === digest);
  if (same) return storageJoin(dir, same.stored);
  throw differentContent(repo, dir, name, digest, other, partials.length > 0);
}

export function differentContent(repo: Repository, dir: string, name: string, digest: string, other: StoredCopy, forked = false): PgpitrError {
  return new PgpitrError('ERR_TARGET', `WAL file "${name}" is already archived with different content`, {
    detail: `archived SHA-256 ${other.sha256} (${displayPath(repo, storageJoin(dir, other.stored))}), this file ${digest}`,
    hint: name.endsWith('.history')
      ? 'two servers were promoted to this timeline (one chose its ID while it could not read the archive, where the other\'s history file was): the archived one is the other\'s; WAL of this server cannot go into this stanza on that timeline: archive it into another stanza and take a full backup there'
      : forked
        ? `a promotion ended this timeline in this segment (the archive holds ${name}.partial, from the promoted server), and this server went on writing the timeline after it (split brain): its WAL past the fork has no place in the archive. Stop it and make it a standby of the promoted server (pgpitr restore --delta --standby, or pg_rewind); its archiver stops failing once this file is gone from its pg_wal`
        : 'two clusters may be archiving into the same stanza, or the archive was restored from elsewhere; check archive_command on every server using this repository',
  });
}
