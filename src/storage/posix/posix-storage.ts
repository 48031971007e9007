// The posix Storage driver: a repository in a local (or mounted) directory.
// Atomic writes go to a temporary name in the same directory, are synced, and
// are linked (exclusive) or renamed (replace) into place, then the directory
// is synced; directories a write creates have their own entries synced too,
// so that a power loss never leaves a file that was reported written without
// the path leading to it.

import { open, mkdir, rename, link, unlink, lstat, readdir, rm, rmdir, stat, lchown } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { dirname, join, resolve, isAbsolute } from 'node:path';
import { hostname } from 'node:os';
import { PgpitrError, storageError } from '../../common/errors.js';
import { checkStoragePath } from '../storage-path.js';
import type { ListOptions, ReadOptions, Storage, StorageEntry, StorageEntryType, StorageFeatures, WriteOptions } from '../storage.js';
import { fsyncPath } from '../durable.js';
import { WriteBehind } from './write-behind.js';
import { WRITE_PIECE } from '../write-piece.js';

const DIR_MODE = 0o750;
const FILE_MODE = 0o640;
const STAT_PARALLEL = 16;
const REMOVE_PARALLEL = 16;

let tmpCounter = 0;

/**
 * The temporary name of an atomic write: <final>.tmp-<host>-<pid>-<n>, unique per host, process
 * and call, and telling whoever finds it after a crash whose it was (repo/archive-temp.ts removes
 * those of processes gone from this host; docs/repository-format.md).
 */
export function tempNameFor(final: string): string {
  return `${final}.tmp-${hostname()}-${process.pid}-${++tmpCounter}`;
}

export class PosixStorage implements Storage {
  readonly features: StorageFeatures = { move: true, pathSync: true, directories: true, localPaths: true, conditionalCreate: true, remote: false, releasesChunks: true };
  readonly location: string;

  /** root must be absolute: a relative one would mean different places to processes started in different directories. */
  constructor(readonly root: string) {
    if (!isAbsolute(root)) {
      throw new PgpitrError('ERR_USAGE', `repository path "${root}" is relative`, {
        hint: `give an absolute path (archive_command and restore_command run in the data directory, not where you are): ${resolve(root)}?`,
      });
    }
    this.location = `"${root}"`;
  }

  private owner: Promise<{ uid: number; gid: number } | null> | null = null;

  /**
   * Run as root, what this process creates takes the owner of the repository's directory (when
   * that is not root): a restore or a backup run as root must not leave files and directories
   * that the repository's own user (archive_command's, expire's) cannot replace or remove.
   */
  private repositoryOwner(): Promise<{ uid: number; gid: number } | null> {
    if (process.getuid?.() !== 0) return Promise.resolve(null);
    this.owner ??= stat(this.root).then((st) => (st.uid === 0 ? null : { uid: st.uid, gid: st.gid }), () => null);
    return this.owner;
  }

  /**
   * A change of owner, where the system allows it: refused (no CAP_CHOWN in a container, a user
   * namespace, a file system without owners), what is written stays root's, as before, and no
   * more is tried.
   */
  private async giveAway(change: () => Promise<void>): Promise<void> {
    try {
      await change();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
      this.owner = Promise.resolve(null);
    }
  }

  /** The absolute path of a storage path (checked). */
  pathOf(path: string): string {
    const rel = checkStoragePath(path, this.location);
    return rel === '' ? this.root : join(this.root, rel);
  }

  localPath(path: string): string {
    return this.pathOf(path);
  }

  async info(path: string): Promise<StorageEntry | null> {
    const abs = this.pathOf(path);
    try {
      const st = await lstat(abs);
      const entry: StorageEntry = { name: path, type: typeOf(st), size: st.size, mtimeMs: st.mtimeMs };
      if (entry.type === 'link') entry.linksTo = await stat(abs).then(typeOf, (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? ('nothing' as const) : ('other' as const)));
      return entry;
    } catch (e) {
      if (isMissing(e)) return null;
      throw storageError('read information about', abs, e);
    }
  }

  async list(path: string, opts: ListOptions = {}): Promise<StorageEntry[]> {
    const base = this.pathOf(path);
    const prefix = opts.prefix ?? '';
    const out: StorageEntry[] = [];
    // With a prefix: keep the entries whose relative name starts with it, and descend only into
    // directories that can hold such entries.
    const wanted = (name: string): boolean => name.startsWith(prefix);
    const descend = (e: StorageEntry): boolean => e.type === 'directory' && (`${e.name}/`.startsWith(prefix) || prefix.startsWith(`${e.name}/`));
    const walk = async (rel: string): Promise<void> => {
      const dir = rel === '' ? base : join(base, rel);
      let names: string[] = [];
      if (opts.detail !== false) {
        const read = await listedOrAbsent(dir, rel === '', () => readdir(dir));
        if (read === null) return;
        names = read;
      }
      const entries: StorageEntry[] = [];
      if (opts.detail === false) {
        const dirents = await listedOrAbsent(dir, rel === '', () => readdir(dir, { withFileTypes: true }));
        if (dirents === null) return;
        for (const d of dirents) entries.push({ name: rel === '' ? d.name : `${rel}/${d.name}`, type: typeOf(d), size: 0, mtimeMs: 0 });
        out.push(...entries.filter((e) => wanted(e.name)));
        if (opts.recursive) for (const e of entries) if (descend(e)) await walk(e.name);
        return;
      }
      // Without recursion, a name that does not match needs no stat.
      if (!opts.recursive && prefix !== '') names = names.filter(wanted);
      for (let i = 0; i < names.length; i += STAT_PARALLEL) {
        const batch = names.slice(i, i + STAT_PARALLEL).map(async (name) => {
          const relName = rel === '' ? name : `${rel}/${name}`;
          try {
            const st = await lstat(join(dir, name));
            entries.push({ name: relName, type: typeOf(st), size: st.size, mtimeMs: st.mtimeMs });
          } catch (e) {
            if (!isMissing(e)) throw storageError('read information about', join(dir, name), e);
          }
        });
        await Promise.all(batch);
      }
      out.push(...entries.filter((e) => wanted(e.name)));
      if (opts.recursive) for (const e of entries) if (descend(e)) await walk(e.name);
    };
    await walk('');
    return out;
  }

  async read(path: string, opts: ReadOptions = {}): Promise<Readable | null> {
    const abs = this.pathOf(path);
    let fh: FileHandle;
    try {
      fh = await open(abs, 'r');
    } catch (e) {
      if (isMissing(e)) return null;
      throw storageError('open', abs, e);
    }
    const start = opts.offset ?? 0;
    const end = opts.length === undefined ? undefined : start + opts.length - 1;
    if (end !== undefined && end < start) {
      await fh.close();
      return Readable.from([]);
    }
    return fh.createReadStream({ start, ...(end === undefined ? {} : { end }), highWaterMark: 1024 * 1024 });
  }

  async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts: WriteOptions = {}): Promise<void> {
    const atomic = opts.atomic ?? true;
    const sync = opts.sync ?? true;
    const exclusive = opts.exclusive ?? false;
    const final = this.pathOf(path);
    if (final === this.root) throw storageError('write', final, new Error('the storage root is a directory'));
    await this.makeParent(final, sync);
    const target = atomic ? tempNameFor(final) : final;
    const flags = atomic || exclusive ? 'wx' : 'w';
    let fh: FileHandle;
    try {
      fh = await open(target, flags, opts.mode ?? FILE_MODE).catch(async (e: NodeJS.ErrnoException) => {
        // The directory went between its creation and the open (expire prunes an archive
        // directory it emptied): create it again, once.
        if (e.code !== 'ENOENT') throw e;
        await this.makeParent(final, sync);
        return open(target, flags, opts.mode ?? FILE_MODE);
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !atomic) throw exists(final);
      throw storageError('create', target, e);
    }
    try {
      try {
        const owner = await this.repositoryOwner();
        if (owner !== null) await this.giveAway(() => fh.chown(owner.uid, owner.gid));
        if (Buffer.isBuffer(source)) await fh.writeFile(source);
        else {
          // A synced stream (a backup's large file) has the kernel start writing it as it comes
          // (write-behind.ts): the sync below then finds little left.
          const behind = new WriteBehind(fh.fd, 0, sync);
          for await (const chunk of source) {
            await writeChunk(fh, chunk as Buffer);
            behind.wrote((chunk as Buffer).length);
          }
        }
        if (sync) await fh.sync();
      } finally {
        await fh.close();
      }
      if (atomic) {
        // link() refuses an existing name, atomically: the exclusive case races with nobody.
        if (exclusive) {
          try {
            await link(target, final);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(final);
            throw e;
          }
          await unlink(target);
        } else {
          await rename(target, final);
        }
      }
    } catch (e) {
      if (atomic) await unlink(target).catch(() => {});
      if (e instanceof PgpitrError) throw e;
      throw storageError('write', final, e);
    }
    if (sync) await fsyncPath(dirname(final));
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const abs = this.pathOf(path);
    try {
      if (opts.recursive) {
        await rm(abs, { recursive: true, force: true });
        return;
      }
      const st = await lstat(abs);
      if (st.isDirectory()) await rmdir(abs);
      else await unlink(abs);
    } catch (e) {
      if (isMissing(e)) return;
      throw storageError('remove', abs, e);
    }
  }

  async removeMany(paths: readonly string[]): Promise<void> {
    const files = paths.map((p) => this.pathOf(p));
    const failed: { file: string; error: unknown }[] = [];
    for (let i = 0; i < files.length; i += REMOVE_PARALLEL) {
      await Promise.all(
        files.slice(i, i + REMOVE_PARALLEL).map(async (file) => {
          try {
            await unlink(file);
          } catch (e) {
            if (!isMissing(e)) failed.push({ file, error: e });
          }
        }),
      );
    }
    if (failed.length === 0) return;
    const first = failed[0]!;
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more: ${failed.slice(1, 4).map((f) => `"${f.file}"`).join(', ')}${failed.length > 4 ? ', ...' : ''})` : '';
    const err = storageError('remove', first.file, first.error);
    throw new PgpitrError('ERR_STORAGE', `${err.message}${more}`, { cause: first.error, ...(err.hint ? { hint: err.hint } : {}) });
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.pathOf(from);
    const dst = this.pathOf(to);
    await this.makeParent(dst, true);
    try {
      await rename(src, dst);
    } catch (e) {
      throw storageError(`move "${src}" to`, dst, e);
    }
  }

  async pathSync(path: string): Promise<void> {
    await fsyncPath(this.pathOf(path));
  }

  async pathCreate(path: string): Promise<void> {
    const abs = this.pathOf(path);
    // The storage's root is made only in a directory that exists: a missing parent is most often a file
    // system not mounted, and a repository made below its mount point would take the WAL meant for it.
    if (abs === this.root && !(await stat(dirname(abs)).catch(() => null))?.isDirectory()) {
      throw new PgpitrError('ERR_STORAGE', `cannot create "${abs}": its parent directory "${dirname(abs)}" does not exist`, {
        hint: 'mount the file system it is on, or create the parent directory first',
      });
    }
    await this.makeDirectory(abs, true);
  }

  async pruneDirectory(path: string): Promise<void> {
    const abs = this.pathOf(path);
    if (abs === this.root) return;
    try {
      await rmdir(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (isMissing(e) || code === 'ENOTEMPTY' || code === 'EEXIST') return;
      throw storageError('remove directory', abs, e);
    }
  }

  /** mkdir -p of a file's directory; with sync, the entries of the directories it created are made durable. */
  private async makeParent(file: string, sync: boolean): Promise<void> {
    await this.makeDirectory(dirname(file), sync);
  }

  private async makeDirectory(dir: string, sync: boolean): Promise<void> {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
      const owner = first === undefined ? null : await this.repositoryOwner();
      // lchown: a directory swapped for a link meanwhile by its parent's owner gives nothing away.
      if (owner !== null) for (let d = dir; ; d = dirname(d)) {
        await this.giveAway(() => lchown(d, owner.uid, owner.gid));
        if (d === first || d === dirname(d)) break;
      }
    } catch (e) {
      throw storageError('create directory', dir, e);
    }
    if (!sync) return;
    if (first === undefined) {
      // There already, but maybe only just, by another process that has not synced its parent yet
      // (or was killed before it could): a write reported durable must not lose its directory.
      const st = await stat(dir).catch(() => null);
      // Its birth time (statx), not its ctime, which every new entry changes; 0 where not known
      // (NFS, ext4 with small inodes): maybe young, so synced too (one directory fsync).
      if (st !== null && (st.birthtimeMs <= 0 || Date.now() - st.birthtimeMs < YOUNG_DIR_MS)) await fsyncPath(dirname(dir));
      return;
    }
    // Every directory from first's parent down to dir's parent gained an entry.
    const chain: string[] = [];
    for (let d = dir; d !== dirname(first); d = dirname(d)) chain.push(dirname(d));
    for (const d of chain) await fsyncPath(d);
  }
}

/** A directory this recent may not be durable yet in its parent (see makeDirectory). */
const YOUNG_DIR_MS = 60_000;

async function writeChunk(fh: FileHandle, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fh.write(chunk, off, Math.min(WRITE_PIECE, chunk.length - off))).bytesWritten;
}


function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): StorageEntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'link';
  return 'other';
}

/**
 * Whether nothing is at `path` (a directory not made yet lists as empty): a link to nothing (a
 * directory moved to a disk that is not mounted) or a file there is not "empty", and a WAL file
 * looked for below it must not be answered "not archived".
 */
/**
 * A directory's listing, or null when the directory listed (`top`: the one asked for) does not
 * exist. One made between the failed read and the look that found it there (a push creating its
 * timeline's directory while check lists it) is read again, not reported as a failure.
 */
async function listedOrAbsent<T>(dir: string, top: boolean, read: () => Promise<T>): Promise<T | null> {
  for (let tries = 1; ; tries++) {
    try {
      return await read();
    } catch (e) {
      if (!isMissing(e) || !top) throw storageError('list directory', dir, e);
      if (await absent(dir)) return null;
      if (tries >= 3) throw storageError('list directory', dir, e); // there, and still not readable: a dangling link
    }
  }
}

async function absent(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch (e) {
    return isMissing(e);
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function exists(path: string): PgpitrError {
  return new PgpitrError('ERR_TARGET', `"${path}" already exists`, {
    hint: 'stored objects are never overwritten; another process may be writing the same object',
  });
}
