// Encryption at rest as a Storage over any Storage: every object a key
// resolver gives a key to is written encrypted and authenticated
// (object-format.ts) and read back decrypted, whole or by range, with sizes
// given in plaintext bytes. Callers see plaintext and never know; the driver
// below sees ciphertext and never knows either. Which paths get which key is
// the repository's business (the resolver), not this file's.

import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { DamagedContentError, OtherKeyError, PgpitrError } from '../../common/errors.js';
import { objectAt, storageJoin } from '../storage-path.js';
import { directSourceOf } from '../storage.js';
import type { DirectSource, ListOptions, PendingUpload, ReadOptions, Storage, StorageEntry, StorageFeatures, WriteOptions } from '../storage.js';
import { CipherFailure, checkHeader, decryptObject, encryptObject, otherKeyIdOf } from './chunk-cipher.js';
import { HEADER_SIZE, TAG_SIZE, plainSize, storedSize } from './object-format.js';
import type { DataKey } from './object-format.js';

/** Which key an object is encrypted with; null: stored as it is (the repository marker, locks). */
export interface KeyResolver {
  keyFor(path: string): DataKey | null;
}

export class CipherStorage implements Storage {
  readonly location: string;
  readonly features: StorageFeatures;

  private readonly resolver: () => Promise<KeyResolver>;

  /**
   * `keys` may come later (a function): the repository's key is read from its marker on first use,
   * so that opening a repository that is out of reach costs nothing and fails nothing until it is
   * used (and is tried again on the next use).
   */
  constructor(
    private readonly inner: Storage,
    keys: KeyResolver | (() => Promise<KeyResolver>),
  ) {
    this.resolver = typeof keys === 'function' ? keys : () => Promise.resolve(keys);
    this.location = inner.location;
    // Objects are bound to their path: a rename would make them unreadable. Local files hold
    // ciphertext, which readers of their own cannot use.
    this.features = { ...inner.features, move: false, localPaths: false, releasesChunks: false };
    if (inner.pathSync) this.pathSync = (p) => inner.pathSync!(p);
    if (inner.pathCreate) this.pathCreate = (p) => inner.pathCreate!(p);
    if (inner.pruneDirectory) this.pruneDirectory = (p) => inner.pruneDirectory!(p);
    if (inner.close) this.close = () => inner.close!();
    // Incomplete uploads hold ciphertext parts: listed and aborted by path, as on the storage below.
    if (inner.listUploads) this.listUploads = () => inner.listUploads!();
    if (inner.abortUpload) this.abortUpload = (u) => inner.abortUpload!(u);
  }

  pathSync?(path: string): Promise<void>;
  pathCreate?(path: string): Promise<void>;
  pruneDirectory?(path: string): Promise<void>;
  close?(): Promise<void>;
  listUploads?(): Promise<PendingUpload[] | null>;
  abortUpload?(upload: PendingUpload): Promise<void>;

  async info(path: string): Promise<StorageEntry | null> {
    const e = await this.inner.info(path);
    return e === null ? null : this.plainEntry(await this.resolver(), path, e);
  }

  async list(path: string, opts?: ListOptions): Promise<StorageEntry[]> {
    const entries = await this.inner.list(path, opts);
    if (opts?.detail === false) return entries;
    const keys = await this.resolver();
    return entries.map((e) => this.plainEntry(keys, storageJoin(path, e.name), e));
  }

  async read(path: string, opts: ReadOptions = {}): Promise<Readable | null> {
    const key = (await this.resolver()).keyFor(path);
    if (key === null) return this.inner.read(path, opts);
    const offset = opts.offset ?? 0;
    if (offset === 0 && opts.length === undefined) {
      const raw = await this.inner.read(path);
      if (raw === null) return null;
      return this.decrypted(path, raw, decryptObject(raw, { dataKey: key, path }));
    }
    // A range: the header, then the chunks that cover it (and one byte more, which tells whether
    // the last of them is the object's final chunk).
    const headerStream = await this.inner.read(path, { offset: 0, length: HEADER_SIZE });
    if (headerStream === null) return null;
    let header: Buffer;
    try {
      header = await collect(headerStream);
    } catch (e) {
      throw this.failure(path, e);
    }
    if (opts.length === 0) return Readable.from([]);
    // Chunks as the object's own header sizes them (every object written today: CHUNK_SIZE).
    let chunkSize: number;
    try {
      chunkSize = checkHeader(header, key, path).chunkSize;
    } catch (e) {
      throw this.failure(path, e);
    }
    const stride = chunkSize + TAG_SIZE;
    const first = Math.floor(offset / chunkSize);
    const last = opts.length === undefined ? null : Math.floor((offset + opts.length - 1) / chunkSize);
    const start = HEADER_SIZE + first * stride;
    const raw = await this.inner.read(path, last === null ? { offset: start } : { offset: start, length: (last - first + 1) * stride + 1 });
    if (raw === null) return null;
    const chunks = decryptObject(raw, { dataKey: key, path, range: { header, firstChunk: first, lastChunk: last } });
    return this.decrypted(path, raw, slice(chunks, offset - first * chunkSize, opts.length));
  }

  async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts: WriteOptions = {}): Promise<void> {
    const key = (await this.resolver()).keyFor(path);
    if (key === null) return this.inner.write(path, source, opts);
    const plain: AsyncIterable<Buffer> = Buffer.isBuffer(source) ? [source] as unknown as AsyncIterable<Buffer> : source;
    const sealed = Readable.from(encryptObject(toAsync(plain), key, path), { objectMode: false });
    const { size, ...rest } = opts;
    return this.inner.write(path, sealed, size === undefined ? rest : { ...rest, size: storedSize(size) });
  }

  /** The driver's source of the stored bytes, and the decryption this layer adds (none nested). */
  async directSource(path: string): Promise<DirectSource | null> {
    const key = (await this.resolver()).keyFor(path);
    const inner = await directSourceOf(this.inner, path);
    if (key === null || inner === null) return inner;
    if (inner.decrypt !== null) return null;
    return { ...inner, decrypt: { keyId: key.id, key: key.key, path } };
  }

  remove(path: string, opts?: { recursive?: boolean }): Promise<void> {
    return this.inner.remove(path, opts);
  }

  removeMany(paths: readonly string[]): Promise<void> {
    return this.inner.removeMany(paths);
  }

  /** An entry with its plaintext size (an object whose size no valid one has keeps its stored size: reading it fails). */
  private plainEntry(keys: KeyResolver, path: string, e: StorageEntry): StorageEntry {
    if (e.type !== 'file' || keys.keyFor(path) === null) return e;
    const size = plainSize(e.size);
    return size === null ? e : { ...e, size };
  }

  private decrypted(path: string, raw: Readable, plain: AsyncIterable<Buffer>): Readable {
    const out = Readable.from(
      (async function* (self: CipherStorage) {
        try {
          yield* plain;
        } catch (e) {
          throw self.failure(path, e);
        }
      })(this),
      { objectMode: false },
    );
    out.on('close', () => raw.destroy());
    return out;
  }

  private failure(path: string, e: unknown): Error {
    if (e instanceof CipherFailure) return decryptionError(objectAt(this.location, path), e.why, e.otherKeyId);
    return e as Error;
  }
}

/** The error for an object at `where` that fails to decrypt, for `why` (a CipherFailure's). */
export function decryptionError(where: string, why: string, otherKeyId = otherKeyIdOf(why)): PgpitrError {
  const message = `stored object ${where} cannot be decrypted: ${why}`;
  // Another key: most likely the marker is another repository's (same passphrase), not the data.
  if (otherKeyId !== undefined) {
    return new OtherKeyError(message, otherKeyId, {
      hint: `if the repository marker was replaced by another repository's, put back the one whose cipher.key_id is ${otherKeyId} (pgpitr-repo.json.copy may be it); else the repository was altered: run pgpitr verify`,
    });
  }
  // Read, and failing to decrypt: damaged or altered (the key was checked when the repository was opened).
  return new DamagedContentError(message, { hint: 'the repository is damaged or was altered: run pgpitr verify, and restore from another backup or repository' });
}

async function* toAsync(source: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const b of source as AsyncIterable<Buffer>) yield b;
}

/** `length` bytes (all, when undefined) of a chunk stream, after skipping `skip`. */
async function* slice(chunks: AsyncIterable<Buffer>, skip: number, length: number | undefined): AsyncGenerator<Buffer> {
  let left = length ?? Infinity;
  for await (let c of chunks) {
    if (skip > 0) {
      if (c.length <= skip) {
        skip -= c.length;
        continue;
      }
      c = c.subarray(skip);
      skip = 0;
    }
    if (c.length >= left) {
      yield c.subarray(0, left);
      return;
    }
    left -= c.length;
    yield c;
  }
}
