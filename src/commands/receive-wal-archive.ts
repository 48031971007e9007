// receive-wal's repository mode: where completed segments and history files
// go (the stanza's archive, through wal/archive-wal-file.ts) and what is
// already there (to resume after it), as wal/receiver.ts asks for them.

import { readStanza } from '../repo/stanza.js';
import { stanzaSeenRecently } from '../repo/stanza-presence.js';
import { archivedNames } from '../repo/wal-archive-view.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { Repository } from '../repo/repository.js';
import { archiveWalFile } from '../wal/archive-wal-file.js';

export interface ReceiveWalArchive {
  push(path: string): Promise<void>;
  names(): Promise<string[]>;
}

export async function receiveWalArchive(repo: Repository, stanzaName: string, push: PushOptions, log: (line: string) => void): Promise<ReceiveWalArchive> {
  let stanza = await readStanza(repo, stanzaName);
  return {
    push: async (path: string) => {
      // Read again when last seen over a second ago: a stanza deleted or created again meanwhile.
      if (!stanzaSeenRecently(repo, stanzaName)) stanza = await readStanza(repo, stanzaName);
      const outcome = await archiveWalFile(repo, stanza, path, push);
      log(`${outcome.status === 'stored' ? 'archived' : 'already archived'} ${path.split('/').pop()}`);
    },
    names: () => archivedNames(repo, stanzaName),
  };
}
