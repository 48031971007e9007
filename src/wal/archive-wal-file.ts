// One WAL file between the server's disk and the stanza's archive: what
// archive-push (sync, the background pusher, receive-wal's repository mode)
// and archive-get (sync, the prefetcher) do with a path.

import { basename } from 'node:path';
import { poolFor } from '../storage/buffer-pool.js';
import { checkWalFileName, fetchWalFile, pushWalFile } from '../repo/archive-store.js';
import type { PushOptions, PushOutcome } from '../repo/archive-store.js';
import type { Repository } from '../repo/repository.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { readPgWalFile, writePgWalFile } from './pg-wal-file.js';

/** Stores the WAL file at `source` in the stanza's archive. */
export async function archiveWalFile(repo: Repository, stanza: StanzaInfo, source: string, opts: PushOptions): Promise<PushOutcome> {
  const name = basename(source);
  checkWalFileName(name);
  const data = await readPgWalFile(source, stanza.wal_segment_size);
  try {
    return await pushWalFile(repo, stanza, name, data, opts);
  } finally {
    poolFor(stanza.wal_segment_size).give(data);
  }
}

/**
 * Fetches an archived WAL file into `dest`; false only when the repository and the stanza are
 * healthy and the archive does not have the file. Every other failure throws.
 */
export async function restoreWalFile(repo: Repository, stanza: string, name: string, dest: string): Promise<boolean> {
  const data = await fetchWalFile(repo, stanza, name);
  if (data === null) return false;
  writePgWalFile(dest, data);
  return true;
}
