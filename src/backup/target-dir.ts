// Output directories of one run: the target, mapped tablespace directories
// and --waldir. Each must be absent or empty; we remember which we created so
// a failed run removes exactly what it made (pg_basebackup's cleanup rules).

import { chmodSync, readdirSync, rmSync, statSync } from 'node:fs';
import { fsyncPathSync, makeDirsSync } from '../storage/durable.js';
import { dirname, join, resolve } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { OWNER_ONLY } from '../postgres/data-dir-mode.js';
import type { CreateModes } from '../postgres/data-dir-mode.js';

interface Prepared {
  path: string;
  created: boolean;
  /** What it is for (target directory, WAL directory, a tablespace's directory). */
  what: string;
}

export class OutputDirs {
  private readonly dirs: Prepared[] = [];
  /**
   * --resume: directories that are not empty are taken as they are (the resumed run sorts out their
   * files), but only these: the target and what the interrupted run recorded in its state file as
   * its own. Any other must be empty, as for a new backup: a tablespace left unmapped this time
   * (its path is then the server's own, on this host the live tablespace) or created since.
   */
  keepContentsOf: ReadonlySet<string> = new Set();
  /** Called with the directories prepared so far, besides the first (the target), as each is prepared. */
  onPrepared: ((others: string[]) => void) | null = null;
  /** Whether the directories this run creates are made durable (not with -N). */
  sync = true;
  /** The modes of what this run creates: the source cluster's (owner only until it is known). */
  modes: CreateModes = OWNER_ONLY;

  /** The source's modes are known: apply them to the directories created so far, and to those to come. */
  setModes(modes: CreateModes): void {
    this.modes = modes;
    for (const d of this.dirs) {
      if (!d.created) continue; // a directory the user made keeps its mode, as with pg_basebackup
      try {
        chmodSync(d.path, modes.dir);
      } catch (e) {
        throw storageError('set the mode of', d.path, e);
      }
    }
  }

  /** Make `path` usable: create it, or accept it if it is an empty directory. */
  prepare(path: string, what: string): string {
    const abs = resolve(path);
    // Two tablespaces (or a tablespace and --waldir) mapped to one directory: the second would be
    // taken as empty once the first made it, and their files mixed (pg_basebackup fails on it too).
    const taken = this.dirs.find((d) => d.path === abs);
    if (taken !== undefined) {
      throw new PgpitrError('ERR_USAGE', `${what} "${abs}" is already the ${taken.what}`, {
        hint: 'map each tablespace (-T OLDDIR=NEWDIR) and --waldir to a directory of its own',
      });
    }
    let st;
    try {
      st = statSync(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('access', abs, e);
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new PgpitrError('ERR_TARGET', `${what} "${abs}" exists and is not a directory`, {
          hint: 'choose a directory path that does not exist or is empty',
        });
      }
      let entries: string[];
      try {
        entries = readdirSync(abs);
      } catch (e) {
        throw storageError('read directory', abs, e);
      }
      if (entries.length > 0 && !this.keepContentsOf.has(abs)) {
        throw new PgpitrError('ERR_TARGET', `${what} "${abs}" exists but is not empty`, {
          hint:
            this.keepContentsOf.size > 0
              ? 'the interrupted backup did not write there: give --resume the same -T mappings (and --waldir) as the first run, or map this tablespace to an empty directory'
              : 'remove its contents or choose another directory; pgpitr never overwrites an existing backup',
        });
      }
      this.dirs.push({ path: abs, created: false, what });
      this.prepared();
      return abs;
    }
    const created = makeDirsSync(abs, this.modes.dir, false);
    this.dirs.push({ path: abs, created: true, what }); // removed by a failed run from here on
    try {
      chmodSync(abs, this.modes.dir);
      // Synced into their parents (and the levels made above): a tablespace or WAL directory made
      // now must not vanish after a power loss while the state file says "complete".
      if (this.sync) for (const d of created) fsyncPathSync(dirname(d));
    } catch (e) {
      throw storageError('create directory', abs, e);
    }
    this.prepared();
    return abs;
  }

  private prepared(): void {
    if (this.dirs.length > 1) this.onPrepared?.(this.dirs.slice(1).map((d) => d.path));
  }

  get paths(): string[] {
    return this.dirs.map((d) => d.path);
  }

  /** Remove what this run wrote: directories it created, contents of those it found empty. */
  cleanup(log: (message: string) => void): void {
    for (const d of [...this.dirs].reverse()) {
      try {
        if (d.created) {
          rmSync(d.path, { recursive: true, force: true });
          log(`removing directory "${d.path}"`);
        } else {
          for (const name of readdirSync(d.path)) rmSync(join(d.path, name), { recursive: true, force: true });
          log(`removing contents of directory "${d.path}"`);
        }
      } catch (e) {
        log(`could not remove "${d.path}": ${(e as Error).message}`);
      }
    }
  }
}
