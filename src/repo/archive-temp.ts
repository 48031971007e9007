// Temporary files of the WAL archive: a push is an atomic Storage write, which
// on posix writes <stored name>.tmp-<host>-<pid>-<n> and renames it into
// place (storage/posix/posix-storage.ts tempNameFor), so a push killed before
// its rename leaves one behind. Such a file is stale, and may be removed, when
// its process is gone from this host and it is a minute old, or when it is older than
// STALE_TEMP_AGE_MS (a push on another host, or a name of the older form
// .tmp-<pid>-<n> without the host). A live push's file is never stale: it is
// on this host with a live pid, or it is written within seconds, far below the
// age limit. Removing a temporary file never touches a stored one (another name).

import { hostname } from 'node:os';
import type { StorageEntry } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { processAlive } from './lock.js';
import type { Repository } from './repository.js';

export const STALE_TEMP_AGE_MS = 60 * 60 * 1000;

/** The host (null in the older form) and pid of a temporary file's name; null if it is not one. */
export function parseTempName(name: string): { host: string | null; pid: number } | null {
  const m = /\.tmp-(?:(.+)-)?(\d+)-\d+$/.exec(name);
  return m ? { host: m[1] ?? null, pid: Number(m[2]) } : null;
}

/**
 * How old a temporary file of this host's name with a pid not alive here must be to be stale:
 * containers (a pod's) may share a host name but not their pids, and another one's live push may
 * have the pid of none here.
 */
export const DEAD_TEMP_AGE_MS = 60 * 1000;

export function isStaleTemp(name: string, ageMs: number, thisHost = hostname(), alive: (pid: number) => boolean = processAlive): boolean {
  const t = parseTempName(name);
  if (!t) return false;
  if (ageMs >= STALE_TEMP_AGE_MS) return true;
  return t.host === thisHost && ageMs >= DEAD_TEMP_AGE_MS && !alive(t.pid);
}

/** The stale temporary files among the entries (listed with detail) of directory `dir`: their paths. */
export function staleTemps(dir: string, entries: StorageEntry[], now = Date.now()): string[] {
  return entries.filter((e) => e.type === 'file' && isStaleTemp(e.name, now - e.mtimeMs)).map((e) => storageJoin(dir, e.name));
}

/**
 * Removes the stale temporary files of one archive directory, given its entries (listed with or
 * without detail); returns how many. Best effort: one that cannot be removed is counted by info
 * and check.
 */
export async function removeStaleTemps(repo: Repository, dir: string, entries: StorageEntry[]): Promise<number> {
  const temps = entries.filter((e) => parseTempName(e.name) !== null);
  if (temps.length === 0) return 0;
  let removed = 0;
  for (const path of staleTemps(dir, await withDetail(repo, dir, temps))) {
    try {
      await repo.storage.remove(path);
      removed++;
    } catch {
      /* not ours to remove */
    }
  }
  return removed;
}

/** The entries again with their size and time (only for the few that need them). */
async function withDetail(repo: Repository, dir: string, entries: StorageEntry[]): Promise<StorageEntry[]> {
  const out: StorageEntry[] = [];
  for (const e of entries) {
    try {
      const info = await repo.storage.info(storageJoin(dir, e.name));
      if (info) out.push({ ...info, name: e.name });
    } catch {
      /* renamed or removed meanwhile */
    }
  }
  return out;
}
