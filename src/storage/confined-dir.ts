// Writing a tree whose names come from an untrusted source (a tar stream from
// the server; later a manifest or a repository on restore) under one directory,
// so that nothing is ever written outside it. The rule, for every member:
//   - its name is relative, without "..", and is checked as text first;
//   - no member is written through a symbolic link, whatever made the link (a
//     member of the same stream, or anything found on disk): each parent
//     component must be a real directory (lstat), never a link;
//   - a file is created, never opened: O_CREAT|O_EXCL|O_NOFOLLOW, so an
//     existing file or link at its place is an error, not overwritten or followed;
//   - a link is created only where nothing exists (and only where the caller's
//     policy allows one; this module creates what it is told to);
//   - a file or directory member gets exactly the mode it is given, whatever the
//     umask, as pg_basebackup chmods each member to its tar header's mode (a
//     directory found already there, pg_wal made by the WAL stream, too).
// Directories that stand for a member directory (pg_wal when it is a link to
// --waldir) are "mounts": members under them are written relative to the
// mounted directory, not through the link that points there.
// Parent directories checked or made once are remembered, so the cost per
// member is one open(2), as without the checks.

import { lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { createExclusiveSync, setDirectoryModeSync } from './posix/exact-mode.js';

const NOT_A_BACKUP_HINT =
  'a PostgreSQL server never sends this; the stream does not come from an honest server (check who answers at that address) or is damaged';

/** An error for a member that would escape or overwrite: names the member and where it came from. */
export function unsafeMember(name: string, source: string, why: string, hint = NOT_A_BACKUP_HINT): PgpitrError {
  return new PgpitrError('ERR_UNSAFE_PATH', `refusing member "${name}" of ${source}: ${why}`, { hint });
}

/** The member name as relative components: "", "." and trailing slashes dropped; absolute, ".." and NUL refused. */
export function memberComponents(name: string, source: string): string[] {
  if (name.startsWith('/') || name.includes('\0')) throw unsafeMember(name, source, 'an absolute path or a NUL byte');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) throw unsafeMember(name, source, 'an empty path');
  if (parts.includes('..')) throw unsafeMember(name, source, 'a path with ".." in it');
  return parts;
}

interface Place {
  dir: string; // absolute directory the member lives in (the root or a mount)
  mount: string[]; // the member's components that name that directory ([] for the root)
  parts: string[]; // components below it
}

export class ConfinedDir {
  private readonly checked = new Set<string>();

  /**
   * @param root   the directory to write under (absolute, made by this run)
   * @param source what the names come from, for messages (e.g. `archive "base.tar"`)
   * @param mounts member directory (e.g. "pg_wal") → the absolute directory its members go to
   */
  constructor(
    readonly root: string,
    private readonly source: string,
    private readonly mounts: ReadonlyMap<string, string> = new Map(),
  ) {
    this.checked.add(root);
    for (const dir of mounts.values()) this.checked.add(dir);
  }

  /** Where a member goes, as an absolute path (for messages and callers that need it). */
  pathOf(name: string): string {
    const p = this.place(name);
    return join(p.dir, ...p.parts);
  }

  /**
   * Makes a directory member and any missing parents; an existing real directory is fine. The
   * member gets exactly `mode`, made now or found (a mount: the directory its link points at,
   * as pg_basebackup's chmod of pg_wal reaches --waldir through the link).
   */
  mkdir(name: string, mode: number): void {
    const p = this.place(name);
    this.ensureDirs(name, p, p.parts.length, mode);
    const path = join(p.dir, ...p.parts);
    try {
      setDirectoryModeSync(path, mode);
    } catch (e) {
      throw storageError('set the mode of', path, e);
    }
  }

  /** Creates a file member with exactly `mode` and returns its descriptor, open for writing. */
  createFile(name: string, mode: number): number {
    const p = this.leaf(name);
    const path = join(p.dir, ...p.parts);
    try {
      return createExclusiveSync(path, mode);
    } catch (e) {
      throw this.createFailed(name, path, e);
    }
  }

  /** Creates a symbolic link member pointing at `target` (which the caller chose, not the stream). */
  symlink(name: string, target: string): void {
    const p = this.leaf(name);
    const path = join(p.dir, ...p.parts);
    try {
      symlinkSync(target, path);
    } catch (e) {
      throw this.createFailed(name, path, e);
    }
  }

  /** A member that is a file or a link: its parents made and checked, its own place not a mount. */
  private leaf(name: string): Place {
    const p = this.place(name);
    if (p.parts.length === 0) throw unsafeMember(name, this.source, 'it is a directory of the backup');
    this.ensureDirs(name, p, p.parts.length - 1, 0o700);
    return p;
  }

  private place(name: string): Place {
    const parts = memberComponents(name, this.source);
    for (const [mount, dir] of this.mounts) {
      const m = mount.split('/');
      if (m.every((c, i) => parts[i] === c)) return { dir, mount: m, parts: parts.slice(m.length) };
    }
    return { dir: this.root, mount: [], parts };
  }

  /** The first `count` components of a place must be real directories: made if missing (with `mode` for the last). */
  private ensureDirs(name: string, place: Place, count: number, mode: number): void {
    let dir = place.dir;
    for (let i = 0; i < count; i++) {
      dir = join(dir, place.parts[i]!);
      if (this.checked.has(dir)) continue;
      const shown = () => [...place.mount, ...place.parts.slice(0, i + 1)].join('/');
      try {
        mkdirSync(dir, i === count - 1 ? mode : 0o700);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError('create directory', dir, e);
        let st;
        try {
          st = lstatSync(dir);
        } catch (e2) {
          throw storageError('inspect', dir, e2);
        }
        if (st.isSymbolicLink()) throw unsafeMember(name, this.source, `"${shown()}" is a symbolic link, and no member is written through a link`);
        if (!st.isDirectory()) throw unsafeMember(name, this.source, `"${shown()}" exists and is not a directory`);
      }
      this.checked.add(dir);
    }
  }

  private createFailed(name: string, path: string, e: unknown): PgpitrError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') return unsafeMember(name, this.source, `"${path}" already exists, and a member never replaces what is there`);
    return storageError('create', path, e);
  }
}
