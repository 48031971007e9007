// The stanza's WAL archive as restore and backup read it: the names it holds,
// and a history file's content (fetched and verified by archive-store).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getWalFile, listArchive } from './archive-store.js';

export interface WalArchiveListing {
  names(): string[];
  readHistory(name: string): Promise<Buffer | null>;
}

export function walArchiveView(repo: string, stanza: string): WalArchiveListing {
  return {
    names: () => listArchive(repo, stanza).map((f) => f.name),
    readHistory: async (name) => {
      const dir = mkdtempSync(join(tmpdir(), 'pgpitr-history-'));
      try {
        const dest = join(dir, name);
        return (await getWalFile(repo, stanza, name, dest)) ? readFileSync(dest) : null;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
