// Incomplete multipart uploads under a repository on object storage: a large
// write killed midway (a backup's big file) leaves its parts stored, billed
// and invisible to listings until someone aborts the upload. `check` lists
// them (best effort: some stores do not implement the listing) and aborts
// those older than STALE_UPLOAD_AGE_MS: no write of pgpitr lasts that long, so
// an older upload belongs to no live process. Only uploads under one of the
// repository's stanzas are touched (pgpitr writes nothing large anywhere else):
// a repository at the bucket's root shares the listing with whatever else the
// bucket holds. A bucket lifecycle rule (AbortIncompleteMultipartUpload,
// docs/object-storage.md) does the same without pgpitr.

import type { PendingUpload } from '../storage/storage.js';
import type { Repository } from './repository.js';
import { stanzaRecordPath } from './layout.js';

export const STALE_UPLOAD_AGE_MS = 24 * 60 * 60 * 1000;

export type StaleUploads =
  /** The store does not list its incomplete uploads (S3 answered 501). */
  | { supported: false }
  | {
      supported: true;
      /** Every incomplete upload under the repository's stanzas. */
      total: number;
      /** Uploads under the repository's root but under none of its stanzas: another application's, left alone. */
      others: number;
      /** Those older than STALE_UPLOAD_AGE_MS, each aborted or, failing that, in failed. */
      stale: PendingUpload[];
      failed: { upload: PendingUpload; error: string }[];
    };

/** Lists and aborts the stale uploads; null where the storage leaves none (posix). */
export async function abortStaleUploads(repo: Repository, now = Date.now()): Promise<StaleUploads | null> {
  const storage = repo.storage;
  if (!storage.listUploads) return null;
  const listed = await storage.listUploads();
  if (listed === null) return { supported: false };
  const uploads = await underStanzas(repo, listed);
  // A store that gives no start time (0) is taken at its word only with the time known.
  const stale = uploads.filter((u) => u.initiatedMs > 0 && now - u.initiatedMs >= STALE_UPLOAD_AGE_MS);
  const failed: { upload: PendingUpload; error: string }[] = [];
  for (const u of stale) {
    try {
      await storage.abortUpload?.(u);
    } catch (e) {
      failed.push({ upload: u, error: (e as Error).message });
    }
  }
  return { supported: true, total: uploads.length, others: listed.length - uploads.length, stale, failed };
}

/** The uploads whose path lies in a directory holding a stanza record (one look-up per directory). */
async function underStanzas(repo: Repository, uploads: PendingUpload[]): Promise<PendingUpload[]> {
  const isStanza = new Map<string, Promise<boolean>>();
  const ours = await Promise.all(
    uploads.map((u) => {
      const slash = u.path.indexOf('/');
      if (slash <= 0) return false;
      const dir = u.path.slice(0, slash);
      let known = isStanza.get(dir);
      if (known === undefined) {
        known = stanzaRecordAt(repo, dir);
        isStanza.set(dir, known);
      }
      return known;
    }),
  );
  return uploads.filter((_, i) => ours[i]);
}

async function stanzaRecordAt(repo: Repository, dir: string): Promise<boolean> {
  let record: string;
  try {
    record = stanzaRecordPath(dir);
  } catch {
    return false; // not a name a stanza can have
  }
  return (await repo.storage.info(record)) !== null;
}
