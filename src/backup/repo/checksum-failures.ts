// What a backup records of the page checksum failures it met (record.page_checksum_failures): its
// own, as the warnings worded them, and those of the earlier backups it takes unchanged files
// from, for those files (a -j diff or incr does not read them again, and the damaged page is
// restored from this backup all the same), at most MAX_RECORDED_FAILURES messages, the run's
// total (the server's and -j's) kept last.

import type { BackupSetManifest } from '../../repo/backup-set/manifest.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

/** The most page checksum failure messages a record keeps. */
export const MAX_RECORDED_FAILURES = 1000;

/** The file a failure message names ("./base/5/16384" as the server words it, a tablespace's by its absolute path), or null. */
function fileOf(message: string): string | null {
  const m = /file "([^"]+)"/.exec(message);
  return m ? m[1]!.replace(/^\.\//, '') : null;
}

/**
 * The manifest path a named file is: the same path in the data directory; in a tablespace, the
 * manifest's pg_tblspc/<oid>/PG_<version>_<catalog>/... whose part from PG_ on ends the absolute path named.
 */
function manifestPathOf(file: string, paths: ReadonlyMap<string, string>, inTablespaces: ReadonlyMap<string, string>): string | null {
  if (paths.has(file)) return file;
  const at = file.lastIndexOf('/PG_');
  return at < 0 ? null : (inTablespaces.get(file.slice(at + 1)) ?? null);
}

export function recordedChecksumFailures(own: readonly string[], m: BackupSetManifest, records: readonly BackupRecord[]): string[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const referenced = new Map<string, string>();
  for (const f of m.files) if (f.reference !== undefined) referenced.set(f.path, f.reference);
  const inTablespaces = new Map<string, string>();
  for (const p of referenced.keys()) {
    const t = /^pg_tblspc\/\d+\/(PG_.*)$/.exec(p);
    if (t) inTablespaces.set(t[1]!, p);
  }
  // A file this run read itself (one stream reads every file) is named by its own messages already.
  const named = new Set(own.map(fileOf).filter((f): f is string => f !== null).map((f) => manifestPathOf(f, referenced, inTablespaces) ?? f));
  const carried: string[] = [];
  for (const id of new Set(referenced.values())) {
    for (const message of byId.get(id)?.page_checksum_failures ?? []) {
      const file = fileOf(message);
      const path = file === null ? null : manifestPathOf(file, referenced, inTablespaces);
      if (path !== null && referenced.get(path) === id && !named.has(path)) carried.push(`${message} (in backup ${id}, whose copy of the file this backup takes)`);
    }
  }
  // The run's total (the server's and -j's) is kept, last, whatever is cut.
  const total = own.find((x) => /^\d+ total checksum verification failures/.test(x));
  const rest = [...own.filter((x) => x !== total), ...carried];
  const kept = rest.slice(0, total === undefined ? MAX_RECORDED_FAILURES : MAX_RECORDED_FAILURES - 1);
  return total === undefined ? kept : [...kept, total];
}
