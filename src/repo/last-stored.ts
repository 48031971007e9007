// The WAL file stored last in a stanza's archive: which timeline WAL is being
// archived on now. A promotion archives its history file first (its first whole
// segment may come hours later on a quiet server), so history files count as
// well as segments; on equal times (stores with one-second times) the higher
// timeline. Used by expire (the live timeline a count keeps backups on) and by
// restore (whether the newest timeline is this cluster's present).

/** A segment or history file of the archive, and when it was stored. */
export interface LastStored {
  name: string;
  timeline: number;
  ms: number;
}

export function lastStoredWalFile(files: Iterable<{ name: string; mtimeMs: number }>): LastStored | null {
  let last: LastStored | null = null;
  for (const f of files) {
    if (!/^[0-9A-F]{24}$/.test(f.name) && !/^[0-9A-F]{8}\.history$/.test(f.name)) continue;
    const timeline = parseInt(f.name.slice(0, 8), 16);
    if (!last || f.mtimeMs > last.ms || (f.mtimeMs === last.ms && timeline > last.timeline)) last = { name: f.name, timeline, ms: f.mtimeMs };
  }
  return last;
}
