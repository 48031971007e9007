// The stanza's WAL archive as restore and backup read it: the names it holds,
// and a history file's content (fetched and verified by archive-store).

import { fetchWalFile, listArchive } from './archive-store.js';

export interface WalArchiveListing {
  names(): string[];
  readHistory(name: string): Promise<Buffer | null>;
}

export function walArchiveView(repo: string, stanza: string): WalArchiveListing {
  return {
    names: () => listArchive(repo, stanza).map((f) => f.name),
    readHistory: (name) => fetchWalFile(repo, stanza, name),
  };
}
