// Durability helpers: atomic replace (temporary name, fsync, rename, fsync of
// the directory) and fsync of whole trees with bounded parallelism, the way
// PostgreSQL's fsync_pgdata makes a copied data directory durable.

import { constants as fsConstants, promises as fsp, openSync, fsyncSync, closeSync, fchmodSync, writeSync, renameSync, unlinkSync, mkdirSync, existsSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { storageError } from '../common/errors.js';

export function fsyncPathSync(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw storageError('open for fsync', path, e);
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    // Some file systems refuse fsync on directories (EINVAL); that is not a data-loss risk.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw storageError('fsync', path, e);
  } finally {
    closeSync(fd);
  }
}

/**
 * mkdir -p; with `sync`, the entries of the directories it created are made durable (fsync of
 * each one's parent): a tree synced from `path` down does not cover the levels above it.
 */
export function makeDirsSync(path: string, mode: number, sync: boolean): string[] {
  let first: string | undefined;
  try {
    first = mkdirSync(path, { recursive: true, mode });
  } catch (e) {
    throw storageError('create directory', path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? whyNotMade(path, e) : e);
  }
  if (first === undefined) return [];
  const created: string[] = [];
  const parents: string[] = [];
  for (let d = path; ; d = dirname(d)) {
    created.push(d);
    parents.push(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
  if (sync) for (const p of parents) fsyncPathSync(p);
  return created;
}

/**
 * A recursive mkdir says ENOENT where a level could not be made for another reason (a read-only
 * file system, permission): the level below the deepest that exists, made alone, gives the real one.
 */
function whyNotMade(path: string, e: unknown): unknown {
  let d = path;
  while (dirname(d) !== d && !existsSync(dirname(d))) d = dirname(d);
  try {
    mkdirSync(d);
  } catch (real) {
    return (real as NodeJS.ErrnoException).code === 'EEXIST' ? e : real;
  }
  try {
    rmdirSync(d);
  } catch {
    /* made only to learn why: left if it cannot go */
  }
  return e;
}

/** fsync of a file or directory, off the main thread; a directory the file system will not fsync (EINVAL) is no data-loss risk. */
export async function fsyncPath(path: string): Promise<void> {
  let fh;
  try {
    fh = await fsp.open(path, 'r');
  } catch (e) {
    throw storageError('open for fsync', path, e);
  }
  try {
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw storageError('fsync', path, e);
  } finally {
    await fh.close();
  }
}

/** fsyncPath, where a path that does not exist is no error (every other failure is). */
export async function fsyncPathIfPresent(path: string): Promise<void> {
  await fsyncPath(path).catch((e: Error) => {
    if ((e.cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw e;
  });
}

/** Write `content` to `path` atomically; with `sync`, durable before returning. */
export function writeFileAtomicSync(path: string, content: string | Buffer, sync = true, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    // Created here, never opened through what is there already (a stale file, or a link planted in
    // a directory another user owns, which root would write through).
    try {
      unlinkSync(tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
  } catch (e) {
    throw storageError('create', tmp, e);
  }
  try {
    fchmodSync(fd, mode); // the mode asked for, not narrowed by the umask (0640 in a cluster with group access)
  } catch (e) {
    closeSync(fd);
    throw storageError('create', tmp, e);
  }
  try {
    const buf = typeof content === 'string' ? Buffer.from(content) : content;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (sync) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* ignore */
    }
    throw storageError('write', tmp, e);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    throw storageError('rename into place', path, e);
  }
  if (sync) fsyncPathSync(dirname(path));
}

/**
 * fsync every file, then every directory (deepest first) under `root`, following no links, leaving
 * out lost+found directories. With
 * `files: false`, only the directories: for a caller that synced each file as it wrote it (a
 * second fsync of each is a device cache flush each on some file systems, for nothing).
 */
export async function syncTree(root: string, o: { files?: boolean; parallel?: number } = {}): Promise<void> {
  const withFiles = o.files ?? true;
  const parallel = o.parallel ?? 8;
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    dirs.push(dir);
    let entries;
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw storageError('read directory', dir, e);
    }
    for (const ent of entries) {
      const p = join(dir, ent.name);
      // A file system's own (a tablespace or pg_wal at a mount point's root), often root's 0700:
      // nothing pgpitr writes is in it.
      if (ent.isDirectory() && ent.name === 'lost+found') continue;
      if (ent.isDirectory()) await walk(p);
      else if (withFiles && ent.isFile()) files.push(p);
      if (files.length >= 256) await syncBatch(files.splice(0), parallel);
    }
  };
  await walk(root);
  await syncBatch(files, parallel);
  await syncBatch(dirs.reverse(), parallel);
}

async function syncBatch(paths: string[], parallel: number): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < paths.length) {
      const p = paths[i++]!;
      let fh;
      try {
        fh = await fsp.open(p, 'r');
        await fh.sync();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EINVAL' && code !== 'ENOENT') throw storageError('fsync', p, e);
      } finally {
        await fh?.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, paths.length) }, worker));
}
