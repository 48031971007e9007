// Which of a backup set's files have their stored bytes in the repository: one
// listing of the data/ and bundle/ directories of the set and of the sets it
// takes unchanged files from, then a look-up per file (a bundle member needs
// its bundle long enough to hold it). A diff/incr backup uses it to build only
// on what is there; restore, to refuse before it writes anything (a --delta
// restore removes the old cluster's pg_control and extra files first, and must
// not do so for a backup it cannot read to the end).

import type { Storage } from '../../storage/storage.js';
import { storageJoin } from '../../storage/storage-path.js';
import { backupDir } from './record.js';
import { manifestReferences } from './manifest.js';
import type { ManifestFile } from './manifest.js';
import { BackupSetReader } from './reader.js';
import { isPgpitrError } from '../../common/errors.js';

export interface StoredObjects {
  /** Whether file f of the set has all its stored bytes. */
  has(f: ManifestFile): boolean;
}

export async function storedObjects(storage: Storage, stanza: string, backupId: string, reader: BackupSetReader): Promise<StoredObjects> {
  const present = new Map<string, number>();
  for (const id of new Set([backupId, ...manifestReferences(reader.manifest)])) {
    for (const sub of ['data', 'bundle']) {
      const dir = storageJoin(backupDir(stanza, id), sub);
      // Files only: a link (an object moved elsewhere by hand, maybe to a disk not mounted) is not
      // taken on trust; the set is then refused (restore) or the file stored again (diff/incr).
      for (const e of await storage.list(dir, { recursive: true })) if (e.type === 'file') present.set(storageJoin(dir, e.name), e.size);
    }
  }
  return {
    has: (f) => {
      const s = f.stored;
      if ('bundle' in s && s.length === 0) return true;
      const size = present.get(reader.storedPath(f));
      return size !== undefined && (!('bundle' in s) || size >= s.offset + s.length);
    },
  };
}

/** What restore, info and check say of files whose stored bytes are gone (the first three named). */
export function missingStoredText(lost: readonly ManifestFile[], reader: BackupSetReader): string {
  return `the stored bytes of ${lost.length} file(s) are missing from the repository (${lost.slice(0, 3).map((f) => `"${f.path}" in ${reader.storedLocation(f)}`).join(', ')}${lost.length > 3 ? ', ...' : ''})`;
}

/**
 * Why backup `id`'s files cannot all be read back (its manifest, or stored bytes missing, its own
 * or those of the backups it takes files from); null when they can. What restore refuses, info
 * and check report, and expire does not count on.
 */
export async function missingObjects(storage: Storage, stanza: string, id: string): Promise<string | null> {
  let reader: BackupSetReader;
  try {
    reader = await BackupSetReader.open(storage, backupDir(stanza, id));
  } catch (e) {
    if (!isPgpitrError(e) || (e.code !== 'ERR_STORAGE' && e.code !== 'ERR_NOT_FOUND' && e.code !== 'ERR_UNSAFE_PATH')) throw e;
    return e.message;
  }
  const stored = await storedObjects(storage, stanza, id, reader);
  const lost = reader.manifest.files.filter((f) => !stored.has(f));
  return lost.length === 0 ? null : missingStoredText(lost, reader);
}
