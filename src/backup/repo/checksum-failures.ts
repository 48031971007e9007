// What a backup records of the page checksum failures it met (record.page_checksum_failures): its
// own, as the warnings worded them, and those of the earlier backups it takes unchanged files
// from, for those files (a -j diff or incr does not read them again, and the damaged page is
// restored from this backup all the same), at most MAX_RECORDED_FAILURES messages, the last kept
// (the server's and -j's total comes last).

import type { BackupSetManifest } from '../../repo/backup-set/manifest.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

/** The most page checksum failure messages a record keeps. */
export const MAX_RECORDED_FAILURES = 1000;

/** The file a failure message names ("./base/5/16384" as the server words it), as the manifest names it. */
function fileOf(message: string): string | null {
  const m = /file "([^"]+)"/.exec(message);
  return m ? m[1]!.replace(/^\.\//, '') : null;
}

export function recordedChecksumFailures(own: readonly string[], m: BackupSetManifest, records: readonly BackupRecord[]): string[] {
  const carried: string[] = [];
  const byId = new Map(records.map((r) => [r.id, r]));
  const referenced = new Map<string, string>();
  for (const f of m.files) if (f.reference !== undefined) referenced.set(f.path, f.reference);
  if (referenced.size > 0) {
    for (const id of new Set(referenced.values())) {
      for (const message of byId.get(id)?.page_checksum_failures ?? []) {
        const file = fileOf(message);
        if (file !== null && referenced.get(file) === id) carried.push(`${message} (in backup ${id}, whose copy of the file this backup takes)`);
      }
    }
  }
  const all = [...own, ...carried];
  return all.length > MAX_RECORDED_FAILURES ? [...all.slice(0, MAX_RECORDED_FAILURES - 1), all[all.length - 1]!] : all;
}
