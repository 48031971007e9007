// receive-wal's repository mode: where completed segments and history files
// go (the stanza's archive, through wal/archive-wal-file.ts) and what is
// already there (to resume after it), as wal/receiver.ts asks for them.

import { PgpitrError } from '../common/errors.js';
import { checkRepository, readStanza } from '../repo/stanza.js';
import { ensureStanzaPresent, PRESENCE_TRUST_MS, stanzaSeenRecently } from '../repo/stanza-presence.js';
import { archivedNames } from '../repo/wal-archive-view.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { Repository } from '../repo/repository.js';
import { archiveWalFile } from '../wal/archive-wal-file.js';
import { stanzaMismatch } from '../repo/stanza-match.js';
import type { ServerIdentity } from '../repo/stanza-match.js';

export interface ReceiveWalArchive {
  /**
   * Refuses a server of another database system, major version or WAL segment size than the stanza's (ERR_TARGET), before anything
   * is received: a history file records no system, and one of another cluster stored first would
   * make this stanza's own, when it gets there, "already archived with different content".
   */
  checkSystem(server: ServerIdentity): Promise<void>;
  push(path: string): Promise<void>;
  names(): Promise<string[]>;
  /**
   * Checks twice per PRESENCE_TRUST_MS that the stanza is still the one read, and calls `gone` once
   * when it was deleted (or deleted and created again) from a repository still there: the stream
   * stops then, not at the next segment (stanza-delete waits two PRESENCE_TRUST_MS before removing
   * the files being received). Returns the stop.
   */
  watch(gone: (e: PgpitrError) => void): () => void;
}

export async function receiveWalArchive(repo: Repository, stanzaName: string, push: PushOptions, log: (line: string) => void): Promise<ReceiveWalArchive> {
  let stanza = await readStanza(repo, stanzaName);
  /** The system of the server streamed from, once checked: what its history files belong to. */
  let system: string | undefined;
  return {
    checkSystem: async (server: ServerIdentity) => {
      stanza = await readStanza(repo, stanzaName);
      const differs = stanzaMismatch(server, stanza);
      if (differs !== null) {
        throw new PgpitrError('ERR_TARGET', `the server ${differs.replace('the stanza', `stanza "${stanzaName}"`)} (in ${repo.location})`, {
          hint: 'point receive-wal (-h, -p, -d) at the stanza\'s cluster, or give it that cluster\'s own --stanza (a cluster upgraded or rebuilt since needs a stanza of its own)',
        });
      }
      system = server.systemIdentifier;
    },
    push: async (path: string) => {
      // Read again when last seen over a second ago: a stanza deleted or created again meanwhile.
      if (!stanzaSeenRecently(repo, stanzaName)) stanza = await readStanza(repo, stanzaName);
      const outcome = await archiveWalFile(repo, stanza, path, push, system);
      log(`${outcome.status === 'stored' ? 'archived' : 'already archived'} ${path.split('/').pop()}`);
    },
    names: () => archivedNames(repo, stanzaName),
    watch: (gone) => {
      let busy = false;
      // Twice per trust window: stanza-delete waits two of them before it removes the files received.
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        const look = async (): Promise<PgpitrError | null> => {
          try {
            await ensureStanzaPresent(repo, stanza, { fresh: true });
            return null;
          } catch (e) {
            if (!(e instanceof PgpitrError && e.code === 'ERR_NOT_FOUND')) return null; // storage trouble: the next store's to report
            // A repository out of reach (its file system not mounted) reads as no record too: not a delete.
            return checkRepository(repo).then(() => e, () => null);
          }
        };
        void look().then((e) => {
          if (e === null) busy = false;
          else {
            clearInterval(timer);
            gone(e);
          }
        });
      }, PRESENCE_TRUST_MS / 2);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
