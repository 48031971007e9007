// What a backup records of the page checksum failures it met (record.page_checksum_failures): its
// own, as the warnings worded them, for the files it stores, and those of the earlier backups it
// takes unchanged files from, for those files (a -j diff or incr does not read them again, and the
// damaged page is restored from this backup all the same), at most MAX_RECORDED_FAILURES
// messages, the run's total (the server's and -j's) kept last. A failure the run met in a file it
// then took from an earlier backup (its size and time unchanged: damage that changed neither, as
// bit rot does) is not what the backup holds: it holds the earlier copy. Those files are returned
// apart, to be said, and the run's total is then not recorded (it counted them).

import type { BackupSetManifest } from '../../repo/backup-set/manifest.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

/** The run's summaries (the server's total, its error at the end), which name no file. */
const TOTAL = /^\d+ total checksum verification failures?|checksum verification failure during base backup/;

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

export function recordedChecksumFailures(own: readonly string[], m: BackupSetManifest, records: readonly BackupRecord[]): { recorded: string[]; ownStored: number; olderCopies: { path: string; from: string }[] } {
  const byId = new Map(records.map((r) => [r.id, r]));
  const referenced = new Map<string, string>();
  for (const f of m.files) if (f.reference !== undefined) referenced.set(f.path, f.reference);
  const inTablespaces = new Map<string, string>();
  for (const p of referenced.keys()) {
    const t = /^pg_tblspc\/\d+\/(PG_.*)$/.exec(p);
    if (t) inTablespaces.set(t[1]!, p);
  }
  const pathOf = (message: string): string | null => {
    const f = fileOf(message);
    return f === null ? null : (manifestPathOf(f, referenced, inTablespaces) ?? f);
  };
  // The run's messages about files taken from an earlier backup describe the source, not this backup,
  // unless that backup's record cannot say whether its copy is whole (failures it recorded without
  // their files, or cut at MAX_RECORDED_FAILURES): then they are kept, said to be the source's.
  const older = new Map<string, string>();
  const unknown: string[] = [];
  const stored = own.filter((x) => {
    const path = pathOf(x);
    const from = path === null ? undefined : referenced.get(path);
    if (from === undefined) return true;
    older.set(path!, from);
    const theirs = byId.get(from)?.page_checksum_failures ?? [];
    // (Not TOTAL: a count beside per-file messages names nothing more; the server's error alone names no file.)
    if (theirs.length >= MAX_RECORDED_FAILURES || theirs.some((t) => fileOf(t) === null && !/^\d+ total checksum/.test(t))) unknown.push(`${x} (in the source; backup ${from}, whose copy of the file this backup takes, did not record which files it met failures in)`);
    return false;
  });
  // (A file this run stores is never one of those taken from an earlier backup: its messages stand alone.)
  const carried: string[] = [];
  for (const id of new Set(referenced.values())) {
    for (const message of byId.get(id)?.page_checksum_failures ?? []) {
      const file = fileOf(message);
      const path = file === null ? null : manifestPathOf(file, referenced, inTablespaces);
      if (path !== null && referenced.get(path) === id) carried.push(`${message} (in backup ${id}, whose copy of the file this backup takes)`);
    }
  }
  // The run's total (the server's and -j's) is kept, last, whatever is cut, when it counts only what is stored.
  const total = older.size === 0 ? stored.find((x) => TOTAL.test(x)) : undefined;
  const perFile = stored.filter((x) => !TOTAL.test(x));
  const kept = [...perFile, ...carried, ...unknown].slice(0, total === undefined ? MAX_RECORDED_FAILURES : MAX_RECORDED_FAILURES - 1);
  return { recorded: total === undefined ? kept : [...kept, total], ownStored: perFile.length, olderCopies: [...older].map(([path, from]) => ({ path, from })) };
}
