// Whether a spool directory can be trusted. archive_command takes a marker there for "stored in the
// repository" (pgpitr-spool-wait answers from it without Node), restore_command moves a prefetched
// segment from there into pg_wal unchecked, and the background processes append their logs there.
// Another user who can write to one of its directories, or rename one of them (a directory above
// it writable by others without the sticky bit, as a world-writable directory other than /tmp is),
// could plant markers (WAL reported archived that never was), segments (a recovery that ends early)
// or links (a log appended to a file of the server's user). So: every directory from the spool
// root down belongs to this user (root may use the server user's) and is not writable by others,
// and no directory above the root lets others rename it.

import { lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

const STICKY = 0o1000;
const OTHERS_WRITE = 0o002;

/** Why the spool directory `dir` under `spoolPath` (both existing) is not safe, or null when it is. */
export function unsafeSpool(spoolPath: string, dir: string): string | null {
  const uid = process.geteuid?.();
  if (uid === undefined) return null;
  const root = realpathSync(spoolPath);
  for (let p = dirname(root); ; p = dirname(p)) {
    const st = statSync(p);
    if ((st.mode & OTHERS_WRITE) !== 0 && (st.mode & STICKY) === 0) {
      return `${p}, above it, is writable by every user (mode ${(st.mode & 0o7777).toString(8)}, without the sticky bit /tmp has): any of them could put another directory in its place`;
    }
    if (p === dirname(p)) break;
  }
  const below = relative(spoolPath, dir).split(sep).filter((x) => x !== '');
  const levels = [spoolPath, ...below.map((_, i) => join(spoolPath, ...below.slice(0, i + 1)))];
  for (const d of levels) {
    const st = d === spoolPath ? statSync(d) : lstatSync(d);
    if (!st.isDirectory()) return `${d} is not a directory (a link?)`;
    if (uid !== 0 && st.uid !== uid) return `${d} belongs to another user (uid ${st.uid}; this process runs as uid ${uid})`;
    if ((st.mode & OTHERS_WRITE) !== 0) return `${d} is writable by every user (mode ${(st.mode & 0o7777).toString(8)})`;
  }
  return null;
}
