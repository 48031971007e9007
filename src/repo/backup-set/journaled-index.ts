// A resumed set keeps a large file's stored object with the frame index its
// journal entry recorded, which reading the object whole (as keep() checks it)
// does not use: an object written again since under that name (a later run,
// at another compression level, killed before it journaled) would decode whole
// yet be cut at the wrong places by a restore that decodes it in pieces.

import type { Storage } from '../../storage/storage.js';
import type { SetJournalEntry } from './set-journal.js';

/** Throws (saying why) unless the object at `path` is the size the journal says and its frame index fits it. */
export async function checkJournaledIndex(storage: Storage, path: string, prev: SetJournalEntry): Promise<void> {
  if (!prev.index) return;
  const info = await storage.info(path);
  if (info === null || info.size !== prev.stored_bytes) throw new Error(`it holds ${info === null ? 'nothing' : `${info.size} bytes`}, the journal says ${prev.stored_bytes}`);
  if (prev.index.stored.some((at, i, all) => at >= prev.stored_bytes || (i > 0 && at <= all[i - 1]!))) throw new Error('its frame index does not fit it');
}
