// Before a resumed backup copies anything: everything in its target directory
// that the new backup would not keep is removed — files the interrupted run
// wrote partly or that its journal does not vouch for, files whose source has
// changed or is gone, links (remade), WAL, backup_label, pg_control. Directories
// stay (made again as they are). Nothing is followed through a link.

import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../../common/errors.js';

/**
 * Walks root; a regular file at manifest path `prefix + rel` stays when keep(path, size)
 * says so; `spare` names entries of root itself that are not the backup's (the state file).
 */
export function sweepForResume(root: string, prefix: string, keep: (path: string, size: number) => boolean, spare: ReadonlySet<string>): number {
  let kept = 0;
  const walk = (dir: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return; // the run died before making it
      throw storageError('read directory', dir, e);
    }
    for (const name of names) {
      if (rel === '' && spare.has(name)) continue;
      const path = join(dir, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let st;
      try {
        st = lstatSync(path);
      } catch (e) {
        throw storageError('inspect', path, e);
      }
      if (st.isDirectory()) walk(path, childRel);
      else if (st.isFile() && keep(prefix + childRel, st.size)) kept++;
      else {
        try {
          unlinkSync(path);
        } catch (e) {
          throw storageError('remove', path, e);
        }
      }
    }
  };
  walk(root, '');
  return kept;
}
