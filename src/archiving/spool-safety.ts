// Whether a spool directory can be trusted. archive_command takes a marker there for "stored in the
// repository" (pgpitr-spool-wait answers from it without Node), restore_command moves a prefetched
// segment from there into pg_wal, and the background processes append their logs there. Another
// user who can write to one of its directories, or rename one of them (a directory above it that
// is theirs, or writable by every user without the sticky bit /tmp has), could plant markers (WAL
// reported archived that never was), segments (a recovery that ends early) or links (a log
// appended to a file of the server's user). So, as OpenSSH judges the paths of its keys: every
// directory from the spool root down belongs to a trusted user (this one, root, or the server's
// user that root prepares a spool for) and is not writable by every user, and every directory
// above belongs to a trusted user and is not writable by every user unless sticky. Members of a
// directory's group are trusted: giving a group write access is the administrator's choice.

import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const STICKY = 0o1000;
const OTHERS_WRITE = 0o002;

const modeOf = (mode: number): string => (mode & 0o7777).toString(8);

/** The users trusted: root, this process's, and `more` (the server's user, for root). */
function trustedUids(more: readonly number[]): Set<number> {
  return new Set([0, process.geteuid?.() ?? 0, ...more]);
}

/** Why a directory above a spool (from `from` up to /) lets another user replace what is below it, or null. */
function unsafeAbove(from: string, trusted: ReadonlySet<number>): string | null {
  for (let p = from; ; p = dirname(p)) {
    const st = statSync(p);
    if (!trusted.has(st.uid)) return `${p}, above it, belongs to another user (uid ${st.uid}), who could put another directory in its place`;
    if ((st.mode & OTHERS_WRITE) !== 0 && (st.mode & STICKY) === 0) {
      return `${p}, above it, is writable by every user (mode ${modeOf(st.mode)}, without the sticky bit /tmp has): any of them could put another directory in its place`;
    }
    if (p === dirname(p)) return null;
  }
}

/**
 * Why the spool directory `dir` under `spoolPath` (both existing) is not safe, or null when it is.
 * `trustedOwners`: users besides root and this one whose directories these may be (root preparing
 * the server user's spool); absent, root trusts any owner below the root (it may be a server's).
 */
export function unsafeSpool(spoolPath: string, dir: string, trustedOwners?: readonly number[]): string | null {
  const uid = process.geteuid?.();
  if (uid === undefined) return null;
  const trusted = trustedUids(trustedOwners ?? []);
  const anyOwner = uid === 0 && trustedOwners === undefined;
  const above = unsafeAbove(dirname(realpathSync(spoolPath)), anyOwner ? new Set([...trusted, statSync(spoolPath).uid]) : trusted);
  if (above !== null) return above;
  const below = relative(spoolPath, dir).split(sep).filter((x) => x !== '');
  const levels = [spoolPath, ...below.map((_, i) => join(spoolPath, ...below.slice(0, i + 1)))];
  for (const d of levels) {
    const st = d === spoolPath ? statSync(d) : lstatSync(d);
    if (!st.isDirectory()) return `${d} is not a directory (a link?)`;
    if (!anyOwner && !trusted.has(st.uid)) return `${d} belongs to another user (uid ${st.uid}; this process runs as uid ${uid})`;
    if ((st.mode & OTHERS_WRITE) !== 0) return `${d} is writable by every user (mode ${modeOf(st.mode)})`;
  }
  return null;
}

/** Before a spool is made: why `spoolPath` (made, if absent, under its nearest existing directory) would not be safe, or null. */
export function unsafeSpoolPlace(spoolPath: string, trustedOwners: readonly number[]): string | null {
  const at = resolve(spoolPath);
  // Not a directory: what it is, making the spool says (a mistake, not another user's doing).
  if (existsSync(at)) return statSync(at).isDirectory() ? unsafeSpool(at, at, trustedOwners) : null;
  return unsafeAbove(nearestExisting(dirname(at)), trustedUids(trustedOwners));
}

/** `path` if it exists, else the nearest directory above it that does (what a spool not made yet would be made under). */
export function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && p !== dirname(p)) p = dirname(p);
  return p;
}
