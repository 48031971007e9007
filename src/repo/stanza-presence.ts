// Whether a stanza's record is still the one a process read, for the processes
// that read it once and then store WAL for a long time (the asynchronous
// pusher, receive-wal) and for backup and expire once they hold the stanza's
// lock: a stanza deleted meanwhile (stanza-delete), or deleted and created
// again for another cluster, must make them fail, never let them store into a
// directory no command takes for a stanza, or into the new stanza (PostgreSQL
// would recycle WAL that no restore can find). A record seen less than a
// second ago (by a monotonic clock) counts as there, so that a store costs no
// extra request in the common case.

import { performance } from 'node:perf_hooks';
import { PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import { stanzaRecordPath } from './layout.js';
import type { Repository } from './repository.js';

/** How long a record seen stays trusted; stanza-delete waits twice this between the record and the rest. */
export const PRESENCE_TRUST_MS = 1000;

const seen = new Map<string, { at: number; createdAt: string }>();
const key = (repo: Repository, stanza: string) => `${repo.location}\0${stanza}`;

/** The record (created at `createdAt`) was just read; `readFrom`: when that read began (trust counts from then). */
export function noteStanzaPresent(repo: Repository, stanza: string, createdAt: string, readFrom = performance.now()): void {
  seen.set(key(repo, stanza), { at: readFrom, createdAt });
}

/** Whether the record was read or checked less than PRESENCE_TRUST_MS ago. */
export function stanzaSeenRecently(repo: Repository, stanza: string): boolean {
  const s = seen.get(key(repo, stanza));
  return s !== undefined && performance.now() - s.at < PRESENCE_TRUST_MS;
}

/**
 * Throws unless the stanza's record exists and is the one read as `stanza` (same creation time):
 * seen within PRESENCE_TRUST_MS, unless `fresh`.
 */
export async function ensureStanzaPresent(repo: Repository, stanza: { stanza: string; created_at: string }, opts: { fresh?: boolean } = {}): Promise<void> {
  const k = key(repo, stanza.stanza);
  const s = seen.get(k);
  if (!opts.fresh && s !== undefined && s.createdAt === stanza.created_at && performance.now() - s.at < PRESENCE_TRUST_MS) return;
  const readFrom = performance.now();
  const data = await readAll(repo.storage, stanzaRecordPath(stanza.stanza));
  let createdAt: string | undefined;
  try {
    createdAt = data === null ? undefined : (JSON.parse(data.toString('utf8')) as { created_at?: string }).created_at;
  } catch {
    createdAt = undefined; // damaged: not the record that was read
  }
  if (data === null || createdAt !== stanza.created_at) {
    seen.delete(k);
    throw new PgpitrError(
      'ERR_NOT_FOUND',
      data === null
        ? `stanza "${stanza.stanza}" no longer exists in repository "${repo.location}" (deleted while this process ran)`
        : `stanza "${stanza.stanza}" in repository "${repo.location}" is not the one this process read (deleted and created again, or its record damaged, while it ran)`,
      { hint: `nothing more is stored into it by this process; point archive_command (or receive-wal) at the right stanza, or create it again: pgpitr stanza-create --stanza ${stanza.stanza}` },
    );
  }
  noteStanzaPresent(repo, stanza.stanza, createdAt, readFrom);
}
