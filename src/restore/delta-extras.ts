// Delta restore's clean-up: what the target holds and the backup does not is
// removed (files, links, directories, and a directory where the backup has a
// file), never a mount point nor across one (a
// directory of the backup that is a mount point is cleaned inside); in the WAL
// directory only WAL files, and in a tablespace directory only the backup's own
// PG_<version>_<catalog> directory is looked into.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { BackupSetManifest } from '../repo/backup-set/manifest.js';
import { PgpitrError, storageError } from '../common/errors.js';
import { withDir } from './anchored-dir.js';
import type { AnchoredDir } from './anchored-dir.js';
import { isMountRoot, isRestoreFile, isWalName } from './restore-target-dir.js';
import { lstatOrNull } from './target-files.js';
import { removeWithin } from './remove-within.js';

/** Where restore writes (file-restorer.ts RestoreLayout). */
export interface DeltaLayout {
  target: string;
  walDir?: string | undefined;
  tablespaceDirs: ReadonlyMap<number, string>;
}

/** Removes what the backup does not hold (besides `alsoKeep`); returns how many entries went. */
export async function removeExtras(m: BackupSetManifest, layout: DeltaLayout, destination: (path: string) => string, alsoKeep: string[]): Promise<number> {
  // What stays, and whether the backup has a file there: where it does, a directory in its place
  // goes too (the file is written there next). One entry per path (a manifest of 100,000 files
  // makes as many strings, the largest part of what this holds).
  const keep = new Map<string, boolean>(alsoKeep.map((p) => [p, false]));
  // Restore's own files listed by the backup are not the backup's to keep (this restore's lock and marker are in alsoKeep).
  for (const f of m.files) if (!isRestoreFile(f.path)) keep.set(destination(f.path), true);
  const stays = (path: string): void => void (keep.has(path) || keep.set(path, false));
  for (const d of m.directories) stays(destination(d.path));
  stays(join(layout.target, 'pg_tblspc'));
  if (layout.walDir !== undefined) stays(join(layout.target, 'pg_wal'));
  for (const oid of layout.tablespaceDirs.keys()) stays(join(layout.target, 'pg_tblspc', String(oid)));
  let removed = 0;
  // Each directory walked through itself (anchored-dir.ts): `at` reaches it, `dir` names it.
  const walk = async (dir: string, at: string, follow: boolean, dev?: number, only?: (name: string) => boolean, mountRoot = false): Promise<void> => {
    const inside = async (d: AnchoredDir): Promise<void> => {
      const rootDev = dev ?? (await fsp.stat(d.at())).dev;
      for (const name of await fsp.readdir(d.at())) {
        const p = join(dir, name);
        const st = await fsp.lstat(d.at(name));
        const kept = keep.get(p);
        if (kept === undefined || (st.isDirectory() && kept)) {
          if (st.dev !== rootDev) continue; // a mount point: never removed across file systems
          if (only && !only(name)) continue;
          if (mountRoot && name === 'lost+found') continue; // the file system's own
          if (await removeWithin(p, st, d.at(name))) removed++;
        } else if (st.isDirectory()) {
          // A directory of the backup is cleaned even when something is mounted there (pg_wal on a
          // disk of its own: old segments left there would be replayed when the archive has none).
          await walk(p, d.at(name), false, st.dev, undefined, st.dev !== rootDev);
        }
      }
    };
    try {
      await withDir(at, dir, follow, inside);
    } catch (e) {
      if (e instanceof PgpitrError) throw e;
      throw storageError('read directory', dir, e);
    }
  };
  // A data directory at a file system's root keeps that file system's lost+found.
  await walk(layout.target, layout.target, true, undefined, undefined, isMountRoot(layout.target));
  // The WAL directory (--waldir, checked by restore-target-dir.ts checkWalDir): its old WAL files go,
  // and nothing else (WAL may share a disk with other things).
  if (layout.walDir !== undefined && (await fsp.stat(layout.walDir).catch(() => null))?.isDirectory()) await walk(layout.walDir, layout.walDir, true, undefined, isWalName);
  // In a tablespace's directory only the backup's own PG_<version>_<catalog> directory is this
  // cluster's: other clusters (an older major version kept by pg_upgrade) may live beside it.
  for (const [oid, dir] of layout.tablespaceDirs) {
    for (const d of m.directories) {
      const own = new RegExp(`^pg_tblspc/${oid}/([^/]+)$`).exec(d.path);
      if (own && (await lstatOrNull(join(dir, own[1]!)))?.isDirectory()) await walk(join(dir, own[1]!), join(dir, own[1]!), false);
    }
  }
  return removed;
}