// A resumed set (backup --resume): the interrupted run's objects that the new manifest does not
// name (not kept, or left half-written under a temporary name), and its own manifest if it wrote
// one, go before the manifest is written.

import type { Storage } from '../../storage/storage.js';
import { storageJoin } from '../../storage/storage-path.js';
import { MANIFEST_NAME } from './manifest.js';
import type { ManifestFile } from './manifest.js';

export async function removeUnreferenced(storage: Storage, dir: string, files: readonly ManifestFile[], ext: string): Promise<void> {
  // The interrupted run may have written its manifest (it failed after: the WAL never came).
  await storage.remove(storageJoin(dir, MANIFEST_NAME));
  const named = new Set<string>();
  for (const f of files) if (f.reference === undefined) named.add('object' in f.stored ? f.stored.object : `bundle/${f.stored.bundle}${ext}`);
  const unnamed: string[] = [];
  for (const top of ['data', 'bundle']) {
    for (const e of await storage.list(storageJoin(dir, top), { recursive: true, detail: false })) {
      if (e.type === 'directory') continue;
      const rel = `${top}/${e.name}`;
      if (!named.has(rel)) unnamed.push(storageJoin(dir, rel));
    }
  }
  await storage.removeMany(unnamed);
}
