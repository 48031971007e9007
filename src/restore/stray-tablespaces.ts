// A delta over a cluster holding a tablespace the backup does not (one created after it): its
// link in pg_tblspc goes with everything else the backup does not hold, and so must the
// cluster's own version directory (PG_<major>_<catalog>) at the link's end. Replaying the
// tablespace's CREATE TABLESPACE reuses a version directory it finds there (PostgreSQL's
// tablespace.c, in recovery), and replay of the relations created in it opens the files it
// finds: pages past what replay writes would keep rows of a future the new timeline never had.

import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { overlaps } from './restore-target-dir.js';

export interface StrayTablespace {
  oid: number;
  /** Where the target's link pointed. */
  location: string;
  /** The cluster's version directories there, removed by the delta. */
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
    const versionDirs = entries.filter((e) => e.startsWith(`PG_${major}_`) && lstatSync(join(location, e), { throwIfNoEntry: false })?.isDirectory() === true).map((e) => join(location, e));
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
