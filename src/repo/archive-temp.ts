// Temporary files of the WAL archive: a push writes <stored name>.tmp-<host>-<pid>-<n>
// and renames it into place, so a push killed before its rename leaves one behind.
// Such a file is stale, and may be removed, when its process is gone from this host
// or when it is older than STALE_TEMP_AGE_MS (a push on another host, or a name of
// the older form .tmp-<pid>-<n> without the host). A live push's file is never stale:
// it is on this host with a live pid, or it is written within seconds, far below the
// age limit. Removing a temporary file never touches a stored one (another name).

import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './lock.js';

export const STALE_TEMP_AGE_MS = 60 * 60 * 1000;

let counter = 0;

/** A new temporary name for `final`, unique per host, process and call. */
export function tempPathFor(final: string): string {
  return `${final}.tmp-${hostname()}-${process.pid}-${++counter}`;
}

/** The host (null in the older form) and pid of a temporary file's name; null if it is not one. */
export function parseTempName(name: string): { host: string | null; pid: number } | null {
  const m = /\.tmp-(?:(.+)-)?(\d+)-\d+$/.exec(name);
  return m ? { host: m[1] ?? null, pid: Number(m[2]) } : null;
}

export function isStaleTemp(name: string, ageMs: number, thisHost = hostname(), alive: (pid: number) => boolean = processAlive): boolean {
  const t = parseTempName(name);
  if (!t) return false;
  if (ageMs >= STALE_TEMP_AGE_MS) return true;
  return t.host === thisHost && !alive(t.pid);
}

/** The stale temporary files among `names`, entries of `dir`. */
export function staleTemps(dir: string, names: string[], now = Date.now()): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (!parseTempName(name)) continue;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(join(dir, name)).mtimeMs;
    } catch {
      continue; // renamed or removed meanwhile
    }
    if (isStaleTemp(name, now - mtimeMs)) out.push(join(dir, name));
  }
  return out;
}

/** Removes the stale temporary files of one archive directory; returns how many. Best effort. */
export function removeStaleTemps(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const path of staleTemps(dir, names)) {
    try {
      unlinkSync(path);
      removed++;
    } catch {
      /* gone meanwhile, or not ours to remove: counted by info and check */
    }
  }
  return removed;
}
