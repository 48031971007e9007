// A delta over a cluster holding a tablespace the backup does not (one created after it): its
// link in pg_tblspc goes with everything else the backup does not hold, but the cluster's version
// directory (PG_<major>_<catalog>) at the link's end would stay. Recovering to a point before the
// tablespace was created leaves it there, files of the abandoned future that no catalog names (and
// a later CREATE TABLESPACE at that location fails on it); recovering past its creation, replay
// removes the version directory it finds there and makes it again (PostgreSQL 14 and older's
// tablespace.c, in recovery) or writes into the files there (15 and later). Whose that directory is cannot be told from it (a copy restored on the same host may
// link to its source's location), so the delta is refused while it is there, naming it, rather
// than removing it or leaving replay to.

import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { overlaps } from './restore-target-dir.js';

export interface StrayTablespace {
  oid: number;
  /** Where the target's link pointed. */
  location: string;
  /** The version directories there of the backup's major version. */
  versionDirs: string[];
}

/**
 * The tablespaces the target data directory links to that the backup does not hold
 * (`kept`: the backup's oids), with this cluster's version directories there. `major`: the
 * backup's major version (the target is the same system); `inUse`: directories restore writes
 * (the data directory, the tablespaces' and the WAL's), never counted as stray.
 */
export function strayTablespaces(target: string, kept: ReadonlySet<number>, major: number, inUse: readonly string[]): StrayTablespace[] {
  const links = join(target, 'pg_tblspc');
  let names: string[];
  try {
    names = readdirSync(links);
  } catch {
    return [];
  }
  const out: StrayTablespace[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name) || kept.has(Number(name))) continue;
    const link = join(links, name);
    if (!lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink()) continue; // an in-place one is inside: the delta's walk removes it
    const to = readlinkSync(link);
    const location = isAbsolute(to) ? to : resolve(links, to);
    if (inUse.some((d) => overlaps(d, location))) continue;
    let entries: string[];
    try {
      entries = readdirSync(location);
    } catch {
      continue; // nothing there (a disk not mounted, a directory removed): nothing replay could reuse
    }
    // An empty one holds nothing replay could take up.
    const versionDirs = entries.filter((e) => e.startsWith(`PG_${major}_`) && lstatSync(join(location, e), { throwIfNoEntry: false })?.isDirectory() === true && readdirSync(join(location, e)).length > 0).map((e) => join(location, e));
    if (versionDirs.length > 0) out.push({ oid: Number(name), location, versionDirs });
  }
  return out;
}

/** The major version of a data directory (its PG_VERSION: "15", "9.6"), as a number of the tablespace directories' kind; null when unreadable. */
export function majorOfDataDir(dir: string): number | null {
  try {
    const v = readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim();
    return /^\d+$/.test(v) ? Number(v) : null;
  } catch {
    return null;
  }
}

/** Refuses (ERR_TARGET) a delta while a tablespace the backup does not hold has a version directory of its major version (strayTablespaces). */
export function refuseStrayTablespaces(target: string, kept: ReadonlySet<number>, major: number, inUse: readonly string[], backupId: string): void {
  const stray = strayTablespaces(target, kept, major, inUse)[0];
  if (stray === undefined) return;
  throw new PgpitrError('ERR_TARGET', `the cluster in "${target}" has tablespace ${stray.oid} (at "${stray.location}"), which backup ${backupId} does not hold, and ${stray.versionDirs.join(', ')} is there: recovery would leave it as files no catalog names, or, replaying the tablespace's creation, remove it or write into it`, {
    hint: `remove ${stray.versionDirs.join(', ')} (once sure no other cluster uses it: a copy restored on the same host may share its source's), then run the restore again`,
  });
}
