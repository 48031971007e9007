// Whether a stanza's record is still there, for the processes that read it once
// and then store WAL for a long time (the asynchronous pusher, receive-wal) and
// for backup and expire once they hold the stanza's lock: a stanza deleted
// meanwhile (stanza-delete) must make them fail, never let them store into a
// directory no command takes for a stanza (PostgreSQL would recycle WAL that no
// restore can find). A record seen less than a second ago counts as there, so
// that a store costs no extra request in the common case.

import { PgpitrError } from '../common/errors.js';
import { stanzaRecordPath } from './layout.js';
import type { Repository } from './repository.js';

/** How long a record seen stays trusted; stanza-delete waits twice this between the record and the rest. */
export const PRESENCE_TRUST_MS = 1000;

const seen = new Map<string, number>();
const key = (repo: Repository, stanza: string) => `${repo.location}\0${stanza}`;

/** The record was just read. */
export function noteStanzaPresent(repo: Repository, stanza: string): void {
  seen.set(key(repo, stanza), Date.now());
}

/** Throws unless the stanza's record exists (seen within PRESENCE_TRUST_MS, unless `fresh`). */
export async function ensureStanzaPresent(repo: Repository, stanza: string, opts: { fresh?: boolean } = {}): Promise<void> {
  const at = seen.get(key(repo, stanza));
  if (!opts.fresh && at !== undefined && Date.now() - at < PRESENCE_TRUST_MS) return;
  if ((await repo.storage.info(stanzaRecordPath(stanza))) === null) {
    seen.delete(key(repo, stanza));
    throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" no longer exists in repository "${repo.location}" (deleted while this process ran)`, {
      hint: `nothing more is stored into it; point archive_command (or receive-wal) at an existing stanza, or create it again: pgpitr stanza-create --stanza ${stanza}`,
    });
  }
  noteStanzaPresent(repo, stanza);
}
