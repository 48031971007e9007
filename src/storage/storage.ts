// The Storage interface: where a repository keeps its bytes, whatever the
// medium (a local directory today, object storage later). A driver knows
// nothing of PostgreSQL; the repository knows nothing of a driver's kind, only
// what its feature flags promise. Paths are relative to the driver's root,
// '/'-separated, and checked by storage-path.ts before any driver sees them.
//
// Required operations: info, list, read, write, remove, removeMany. Optional
// ones (move, pathSync, listUploads, close) exist where the medium has them; the feature
// flags say which, so that callers branch on a capability and never on a
// driver's kind.

import type { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';

export type StorageEntryType = 'file' | 'directory' | 'link' | 'other';

export interface StorageEntry {
  /** Relative to the path listed (or the whole path, for info). */
  name: string;
  type: StorageEntryType;
  /** Bytes as stored (after compression and encryption, if any). */
  size: number;
  mtimeMs: number;
  /** For a link given by info(): what it names ('nothing' when it leads nowhere); absent where not known. */
  linksTo?: StorageEntryType | 'nothing';
}

export interface WriteOptions {
  /**
   * Readers see either nothing or the whole object, never a prefix of it, even
   * if the writer dies midway. posix: written under a temporary name in the same
   * directory and renamed into place. Default true.
   */
  atomic?: boolean;
  /**
   * Durable when write() resolves: the data and the name survive a power loss.
   * posix: fsync of the file, and of its directory after the rename. Default true.
   */
  sync?: boolean;
  /** Fail with ERR_TARGET if the object already exists (checked before the data is written). Default false. */
  exclusive?: boolean;
  /** posix: file mode of a new file (default 0o640). Ignored where the medium has none. */
  mode?: number;
  /**
   * The number of bytes the source will give, when the caller knows it (a hint, not checked):
   * object storage then chooses one request or a multipart upload without buffering to find out.
   */
  size?: number;
}

export interface ListOptions {
  /** Descend into sub-directories (names then carry their relative path). Default false. */
  recursive?: boolean;
  /**
   * false: only each entry's name and type are wanted (size and mtimeMs are then 0), which
   * spares posix a stat per entry: what a look-up by name in a large directory needs. Default true.
   */
  detail?: boolean;
  /**
   * Only the entries whose name (relative to the path listed) starts with this string: a look-up
   * of "<segment>-" in an archive directory costs one small answer on object storage, where the
   * prefix goes to the server (posix filters in memory). With recursive, applies to the relative
   * path of each entry. Default: every entry.
   */
  prefix?: string;
}

export interface ReadOptions {
  /** First byte to read. Default 0. */
  offset?: number;
  /** Bytes to read from offset. Default: to the end. */
  length?: number;
}

/** A multipart upload begun and neither completed nor aborted (object storage): invisible to list, yet stored. */
export interface PendingUpload {
  /** The path the upload would have created. */
  path: string;
  uploadId: string;
  /** When it began (ms since the epoch; 0 when the store does not say). */
  initiatedMs: number;
}

export interface StorageFeatures {
  /** move() renames atomically within the storage. */
  readonly move: boolean;
  /** pathSync() makes the names in a directory durable (posix fsync of the directory). */
  readonly pathSync: boolean;
  /** Directories exist on their own (posix); on object storage they are only prefixes. */
  readonly directories: boolean;
  /**
   * localPath() names an object's bytes as a file of this host, which another thread may
   * open and read itself (restore's copiers do, to read without a stream per file).
   */
  readonly localPaths: boolean;
  /**
   * write({ exclusive: true }) is enforced by the storage itself, atomically (posix link(2), a
   * store that honours If-None-Match: *): two writers of the same name never both succeed. false
   * where the store ignores the condition: locks made of exclusive writes are then advisory.
   */
  readonly conditionalCreate: boolean;
  /**
   * Every operation is a request to another host, with its round trip (object storage): a caller
   * that can overlap independent operations gains by keeping more of them in flight than it has
   * CPUs for (the asynchronous archiver stores more files at once there).
   */
  readonly remote: boolean;
  /**
   * write() from an iterable keeps no reference to a chunk once it asks for the next (it has
   * written it by then), so the producer may reuse that chunk's memory. Absent: false.
   */
  readonly releasesChunks?: boolean;
}

export interface Storage {
  /** For messages: where this storage is (a directory, a bucket and prefix). */
  readonly location: string;
  readonly features: StorageFeatures;

  /** What is at path, or null when nothing is. Links are reported as links, not followed. */
  info(path: string): Promise<StorageEntry | null>;
  /** Entries under a directory (or prefix); [] when it does not exist. Order is not specified. */
  list(path: string, opts?: ListOptions): Promise<StorageEntry[]>;
  /** A stream of the object's bytes, or null when it does not exist. */
  read(path: string, opts?: ReadOptions): Promise<Readable | null>;
  /** Stores the bytes of source under path, with the guarantees of opts (atomic and synced by default). */
  write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts?: WriteOptions): Promise<void>;
  /** Removes a file (or, recursive, a whole directory / prefix); nothing to remove is not an error. */
  remove(path: string, opts?: { recursive?: boolean }): Promise<void>;
  /**
   * Removes several files (not directories) at once, as few requests as the medium allows; a
   * name already gone is not an error. When some removals fail, the others are still done and
   * one error names the first failures.
   */
  removeMany(paths: readonly string[]): Promise<void>;

  /** Renames from to to, replacing to; only when features.move. */
  move?(from: string, to: string): Promise<void>;
  /** Makes a directory's entries durable; only when features.pathSync. */
  pathSync?(path: string): Promise<void>;
  /** The local file that holds an object's bytes as stored; only when features.localPaths. */
  localPath?(path: string): string;
  /**
   * Creates a directory (and its parents) that must exist before anything is written in it,
   * durably; only when features.directories (on object storage a prefix needs no creation).
   */
  pathCreate?(path: string): Promise<void>;
  /**
   * Removes a directory when it holds nothing; one that holds entries, or is gone, is left as it
   * is and is not an error. Only when features.directories (a prefix disappears with its objects).
   */
  pruneDirectory?(path: string): Promise<void>;
  /**
   * The incomplete multipart uploads under the storage's root; null when the store does not
   * support listing them. Absent where writes leave no such thing (posix).
   */
  listUploads?(): Promise<PendingUpload[] | null>;
  /** Aborts an incomplete multipart upload (its parts are deleted); one already gone is not an error. */
  abortUpload?(upload: PendingUpload): Promise<void>;
  /**
   * How another thread can give back an object's bytes itself (see DirectSource); null when only
   * read() can. Absent: directSourceOf() derives it from localPaths. A layer over another storage
   * (encryption) says what it adds.
   */
  directSource?(path: string): Promise<DirectSource | null>;
  /**
   * Releases what the storage holds open (network connections); afterwards the storage must
   * not be used. Absent where nothing is held.
   */
  close?(): Promise<void>;
}

/**
 * An object's bytes as a worker thread of this process can produce them without this process's
 * streams (restore's copier threads): the stored bytes are read from `file` when it is a file of
 * this host, or else streamed to the thread from `raw.read(rawPath)`; then decrypted as `decrypt`
 * says (the PGPE format of storage/cipher, with this data key and the object path its keys are
 * bound to), when not null. What comes out is what read(path) gives.
 */
export interface DirectSource {
  file: string | null;
  raw: Storage;
  rawPath: string;
  decrypt: { keyId: Buffer; key: Buffer; path: string } | null;
}

/** The storage's DirectSource for path (a local file, or the storage's own stream), or null. */
export async function directSourceOf(storage: Storage, path: string): Promise<DirectSource | null> {
  if (storage.directSource) return storage.directSource(path);
  const file = storage.features.localPaths && storage.localPath ? storage.localPath(path) : null;
  return { file, raw: storage, rawPath: path, decrypt: null };
}

/** Reads a whole object into memory (small objects only: manifests, records); null when missing. */
export async function readAll(storage: Storage, path: string): Promise<Buffer | null> {
  const stream = await storage.read(path);
  if (stream === null) return null;
  return collect(stream);
}

/**
 * readAll for a large object (a manifest of 100,000 files is 18 MB): its bytes copied into one
 * buffer as they arrive, sized from info() (the stored size: encryption only adds to it), instead
 * of held twice, as chunks and then as their concatenation. A longer content still reads whole.
 */
export async function readAllSized(storage: Storage, path: string): Promise<Buffer | null> {
  const size = (await storage.info(path))?.size ?? 0;
  const stream = await storage.read(path);
  if (stream === null) return null;
  let out = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (n + chunk.length > out.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * out.length, n + chunk.length)); // doubling: a long content copied a few times, not once per chunk
      out.copy(grown, 0, 0, n);
      out = grown;
    }
    chunk.copy(out, n);
    n += chunk.length;
  }
  return out.subarray(0, n);
}
