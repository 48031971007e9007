// The stanza's WAL archive as restore and backup read it: the names it holds,
// and a history file's content (fetched and verified by archive-store).

import { fetchWalFile, listArchive } from './archive-store.js';
import type { Repository } from './repository.js';

export interface WalArchiveListing {
  /** The names of the archived WAL files, as listed when the view was opened. */
  names(): string[];
  readHistory(name: string): Promise<Buffer | null>;
}

/** The archive as it is now (restore reads it once, before it plans). */
export async function openWalArchiveView(repo: Repository, stanza: string): Promise<WalArchiveListing> {
  const names = (await listArchive(repo, stanza)).map((f) => f.name);
  return {
    names: () => names,
    readHistory: (name) => fetchWalFile(repo, stanza, name),
  };
}

/** The names in the archive now (what a backup waiting for its WAL polls). */
export async function archivedNames(repo: Repository, stanza: string): Promise<string[]> {
  return (await listArchive(repo, stanza)).map((f) => f.name);
}
