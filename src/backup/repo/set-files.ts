// What a repository backup's set holds besides its record, as the backup
// command handles it: what a failed or interrupted set stored is removed, a
// resumed set's bundles are numbered after those already there, and a full
// repository is told from other failures.

import type { Storage } from '../../storage/storage.js';
import { storageJoin } from '../../storage/storage-path.js';
import { JOURNAL_DIR } from '../../repo/backup-set/set-journal.js';
import { MANIFEST_NAME } from '../../repo/backup-set/manifest.js';

/** Removes what a set stored (objects, bundles, journal, manifests), keeping its record; true when there was any. */
export async function removeStoredFiles(storage: Storage, dir: string): Promise<boolean> {
  let any = false;
  for (const sub of ['data', 'bundle', JOURNAL_DIR]) {
    const path = storageJoin(dir, sub);
    if ((await storage.list(path, { detail: false })).length === 0) continue;
    any = true;
    await storage.remove(path, { recursive: true });
  }
  // A failure after the manifests were written (waiting for the archive): a failed set keeps none.
  const manifests = (await storage.list(dir, { detail: false })).filter((e) => e.name === MANIFEST_NAME || e.name.startsWith('backup_manifest'));
  if (manifests.length > 0) {
    any = true;
    await storage.removeMany(manifests.map((e) => storageJoin(dir, e.name)));
  }
  return any;
}

/** A resumed set's new bundles are numbered after every bundle already there (journaled or not). */
export async function nextBundleNumber(storage: Storage, dir: string): Promise<number> {
  let next = 0;
  for (const e of await storage.list(storageJoin(dir, 'bundle'), { detail: false })) {
    const m = /^(\d+)(?:\.|$)/.exec(e.name);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/** An error of a full file system of this host (ENOSPC or EDQUOT, as the error's code or its cause's). */
export function noSpaceLeft(e: unknown): boolean {
  for (let x = e as { code?: unknown; cause?: unknown } | undefined, depth = 0; x && depth < 5; x = x.cause as typeof x, depth++) {
    if (x.code === 'ENOSPC' || x.code === 'EDQUOT') return true;
  }
  return false;
}
