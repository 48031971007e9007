// One WAL file between the server's disk and the stanza's archive: what
// archive-push (sync, the background pusher, receive-wal's repository mode)
// and archive-get (sync, the prefetcher) do with a path. A push is two steps,
// so that several repositories cost one read, check, hash and compression:
// prepareWalFile (once), then storePreparedWal (repo/archive-store.ts) in
// each repository, then release.

import { basename, dirname, resolve } from 'node:path';
import { controlSystemIdentifier } from '../postgres/control-file.js';
import { poolFor } from '../storage/buffer-pool.js';
import { checkWalFileName, fetchWalFile, prepareWalData, storePreparedWal } from '../repo/archive-store.js';
import type { PreparedWal, PushOptions, PushOutcome } from '../repo/archive-store.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { readPgWalFile, writePgWalFile } from './pg-wal-file.js';

/** A WAL file read from the server's disk and prepared for storing; release() once every store has settled. */
export interface PreparedWalFile {
  prepared: PreparedWal;
  /** When the file began to be read (ms): a marker saying it is stored is dated from then (spool.ts outdated). */
  readAtMs: number;
  /** Gives the read buffer back (after the compressor is done with it). Call once. */
  release(): Promise<void>;
}

/**
 * Reads, checks, hashes and starts compressing the WAL file at `source` (archive_command's %p).
 * `system`: the database system the file comes from, when the caller knows it (receive-wal, from
 * the server it streams from); else a history file's is its pg_wal's cluster's.
 */
export async function prepareWalFile(stanza: StanzaInfo, source: string, opts: PushOptions, system?: string): Promise<PreparedWalFile> {
  const name = basename(source);
  checkWalFileName(name);
  // Date.now() is rounded down: a ctime in the same millisecond (the file's last write, just before
  // it was marked ready) would look newer than a marker dated so (pgpitr-spool-wait compares in ns).
  const readAtMs = Date.now() + 1;
  const data = await readPgWalFile(source, stanza.wal_segment_size);
  const giveBack = () => poolFor(stanza.wal_segment_size).give(data);
  let prepared: PreparedWal;
  try {
    prepared = await prepareWalData(stanza, name, data, opts);
  } catch (e) {
    giveBack();
    throw e;
  }
  // A history or backup file records no system: the cluster whose pg_wal holds it says (a history
  // file of another cluster, archived before any of its refused segments, would lead a standby's
  // recovery onto a foreign timeline, where the next segment is "not in the archive").
  if (prepared.systemIdentifier === null) prepared = { ...prepared, systemIdentifier: system ?? systemOfPgWal(source) };
  return {
    prepared,
    readAtMs,
    release: async () => {
      await prepared.done();
      giveBack();
    },
  };
}

/** The system identifier of the data directory whose pg_wal holds `source` (as archive_command passes %p); null when not known. */
function systemOfPgWal(source: string): string | null {
  const dir = dirname(resolve(source));
  return basename(dir) === 'pg_wal' ? controlSystemIdentifier(dirname(dir)) : null;
}

/** Stores the WAL file at `source` in the stanza's archive of one repository. */
export async function archiveWalFile(repo: Repository, stanza: StanzaInfo, source: string, opts: PushOptions, system?: string): Promise<PushOutcome> {
  const file = await prepareWalFile(stanza, source, opts, system);
  try {
    return await storePreparedWal(repo, stanza, file.prepared);
  } finally {
    await file.release();
  }
}

/**
 * Fetches an archived WAL file into `dest`; false only when the repository and the stanza are
 * healthy and the archive does not have the file. Every other failure throws.
 */
export async function restoreWalFile(repo: Repository, stanza: string, name: string, dest: string, systemId?: string | null): Promise<boolean> {
  const data = await fetchWalFile(repo, stanza, name, systemId, true);
  if (data === null) return false;
  writePgWalFile(dest, data);
  return true;
}
