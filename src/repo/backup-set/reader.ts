// Reads a backup set back: its manifest (checked path by path), and each
// file's original bytes as a stream that fails at its end, before the caller
// can take the file as good, when they do not match the recorded size and
// digest (content-digest.ts). A diff or incr backup's file that names another
// backup (its reference) is read from that backup's set, a sibling directory.

import { Readable, Transform } from 'node:stream';
import { createDigest, digestHex, digestMismatch, digestOf } from './content-digest.js';
import type { FileDigest } from './content-digest.js';
import { PgpitrError } from '../../common/errors.js';
import type { DirectSource, Storage } from '../../storage/storage.js';
import { directSourceOf, readAllSized } from '../../storage/storage.js';
import { objectAt, storageJoin } from '../../storage/storage-path.js';
import { decryptionError } from '../../storage/cipher/cipher-storage.js';
import { createDecompressor } from '../../storage/compress/index.js';
import { createZstdFrameDecoder } from '../../storage/compress/zstd.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { decompressBuffer } from '../../storage/compress/buffer.js';
import { buffer as collect } from 'node:stream/consumers';
import { compressionExtension } from '../../storage/compress/levels.js';
import { MANIFEST_NAME, parseManifest } from './manifest.js';
import type { BackupSetManifest, ManifestFile } from './manifest.js';

/** See BackupSetReader.threadSource. */
export interface ThreadSource {
  /** A file of this host holding the stored bytes, from offset for length bytes (-1: to its end); null: open() streams them. */
  file: string | null;
  offset: number;
  length: number;
  compression: BackupSetManifest['compression'];
  decrypt: DirectSource['decrypt'];
  /** The stored bytes (as on the medium, before decryption); null when the object is missing. */
  open(): Promise<Readable | null>;
}

export class BackupSetReader {
  /**
   * Bundles read whole, on storage with no local files (object storage: one request per bundle
   * rather than one per small file), each kept until every file of it has been read.
   */
  private readonly bundles = new Map<string, Promise<Buffer | null>>();
  private bundleFiles: Map<string, number> | null = null;

  private constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    readonly manifest: BackupSetManifest,
  ) {}

  static async open(storage: Storage, dir: string): Promise<BackupSetReader> {
    const where = objectAt(storage.location, storageJoin(dir, MANIFEST_NAME));
    const text = await readAllSized(storage, storageJoin(dir, MANIFEST_NAME));
    if (text === null) {
      throw new PgpitrError('ERR_NOT_FOUND', `backup set ${where} has no manifest: the backup did not complete`, {
        hint: 'choose a complete backup (pgpitr info lists them)',
      });
    }
    return new BackupSetReader(storage, dir, parseManifest(text, where));
  }

  /**
   * A reader of a set's stored objects without its manifest (a set being written, whose
   * entries come from elsewhere: a resumed backup checks the interrupted run's copies).
   */
  static forObjects(storage: Storage, dir: string, compression: BackupSetManifest['compression']): BackupSetReader {
    return new BackupSetReader(storage, dir, { format: 'pgpitr-backup-manifest', format_version: 1, backup_id: '', compression, directories: [], files: [], tablespaces: [], server_manifest: null });
  }

  /** Whether the stored bytes are files of this host (posix): reading a range costs no request. */
  get hasLocalFiles(): boolean {
    return this.storage.features.localPaths;
  }

  /** The directory of the set that holds a file's stored bytes: this one, or the backup it names. */
  setDir(f: ManifestFile): string {
    if (f.reference === undefined) return this.dir;
    const cut = this.dir.lastIndexOf('/');
    return storageJoin(cut < 0 ? '' : this.dir.slice(0, cut), f.reference);
  }

  /** The stored object (or bundle) holding a file's bytes, in the storage. */
  storedPath(f: ManifestFile): string {
    const s = f.stored;
    const ext = this.manifest.compression === 'none' ? '' : compressionExtension(this.manifest.compression);
    return 'object' in s ? storageJoin(this.setDir(f), s.object) : storageJoin(this.setDir(f), `bundle/${s.bundle}${ext}`);
  }

  /** Where a file's stored bytes are, for messages. */
  storedLocation(f: ManifestFile): string {
    const s = f.stored;
    const dir = this.setDir(f);
    const ext = this.manifest.compression === 'none' ? '' : compressionExtension(this.manifest.compression);
    return 'object' in s ? objectAt(this.storage.location, `${dir}/${s.object}`) : `${objectAt(this.storage.location, `${dir}/bundle/${s.bundle}${ext}`)} (bytes ${s.offset}-${s.offset + s.length - 1})`;
  }

  /**
   * How a thread of its own (restore's copiers) can give back the file's bytes: the stored bytes
   * from a local file (a range of it, for a bundled file) or streamed to it from `open()`, then
   * decrypted and decompressed there. null where only read() can (a bundled file on object storage
   * or encrypted: read() fetches or decrypts its bundle once for all of its files).
   */
  async threadSource(f: ManifestFile): Promise<ThreadSource | null> {
    const s = f.stored;
    const compression = this.manifest.compression;
    const d = await directSourceOf(this.storage, this.storedPath(f));
    if (d === null) return null;
    if ('object' in s) return { file: d.file, offset: 0, length: -1, compression, decrypt: d.decrypt, open: () => d.raw.read(d.rawPath) };
    if (d.file === null || d.decrypt !== null) return null;
    return { file: d.file, offset: s.offset, length: s.length, compression, decrypt: null, open: () => d.raw.read(d.rawPath, { offset: s.offset, length: s.length }) };
  }

  /** The error for stored bytes of the file that fail to decrypt, for `why`. */
  undecryptableError(f: ManifestFile, why: string): PgpitrError {
    return decryptionError(this.storedLocation(f), why);
  }

  /** The error for a file whose stored bytes are gone. */
  missingError(f: ManifestFile): PgpitrError {
    return missing(f, this.storedLocation(f));
  }

  /** The error for a file whose stored bytes do not give back what was recorded. */
  damagedError(f: ManifestFile, why: string): PgpitrError {
    return damaged(f, this.storedLocation(f), why);
  }

  /** The file's original bytes, verified: the stream errors at its end on a size or checksum mismatch. */
  async read(f: ManifestFile): Promise<Readable> {
    const s = f.stored;
    const path = this.storedPath(f);
    const where = this.storedLocation(f);
    if (!('object' in s)) return Readable.from([await this.readSmall(f, path, where)]);
    const raw = await this.storage.read(path);
    if (raw === null) throw missing(f, where);
    let stream: Readable = raw;
    if (this.manifest.compression !== 'none' && f.size > 0) stream = raw.pipe(decoderFor(this.manifest.compression));
    const check = verifier(f, where);
    raw.on('error', (e) => check.destroy(e));
    stream.on('error', (e) => check.destroy(damaged(f, where, (e as Error).message)));
    // pipe() leaves its source open when the destination fails (a decoder meeting damaged bytes)
    // or the caller stops reading: the stored file (its handle) is closed with the check.
    check.once('close', () => {
      stream.destroy();
      raw.destroy();
    });
    return stream.pipe(check);
  }

  /**
   * A bundled (small) file whole: one ranged read, one native decompression call, checked
   * before it is handed over. Restore's many small files cost a stream pipeline each otherwise.
   */
  private async readSmall(f: ManifestFile, path: string, where: string): Promise<Buffer> {
    const s = f.stored as { bundle: number; offset: number; length: number };
    let stored: Buffer | null;
    if (s.length === 0) stored = Buffer.alloc(0);
    else if (!this.storage.features.localPaths && this.manifest.files.length > 0) {
      const whole = await this.wholeBundle(path);
      stored = whole === null ? null : whole.subarray(s.offset, s.offset + s.length);
      if (stored !== null && stored.length !== s.length) throw damaged(f, where, `the bundle ends at byte ${whole!.length}`);
    } else {
      const range = await this.storage.read(path, { offset: s.offset, length: s.length });
      stored = range === null ? null : await collect(range);
    }
    if (stored === null) throw missing(f, where);
    let data = stored;
    if (this.manifest.compression !== 'none' && f.size > 0) {
      try {
        data = await decompressBuffer(this.manifest.compression, stored);
      } catch (e) {
        throw damaged(f, where, (e as Error).message);
      }
    }
    const want = recorded(f);
    const got = digestHex(want.algorithm, data);
    if (data.length !== f.size || got !== want.hex) {
      throw damaged(f, where, data.length !== f.size ? `${data.length} bytes instead of ${f.size}` : digestMismatch(want, got));
    }
    return data;
  }

  /**
   * A bundle's stored bytes, read once for all of its files (null when it is missing); dropped
   * when the last of its files has been asked for. Callers read a bundle's files together
   * (bundledLast orders them so), which keeps few bundles in memory.
   */
  private async wholeBundle(path: string): Promise<Buffer | null> {
    let data = this.bundles.get(path);
    if (!data) {
      const reading = this.storage.read(path).then((r) => (r === null ? null : collect(r)));
      data = reading;
      this.bundles.set(path, reading);
      // A read that failed (the store out of reach for a moment) is not kept: the next file of the bundle reads it again.
      reading.catch(() => {
        if (this.bundles.get(path) === reading) this.bundles.delete(path);
      });
    }
    this.countDown(path);
    return data;
  }

  /**
   * Says that f will not be read (a restore leaves it out, or finds it already in place): its
   * bundle, once every other file of it has been read, is dropped rather than held to the end.
   * A file read after all is still given back (its bundle is fetched again).
   */
  release(f: ManifestFile): void {
    if ('bundle' in f.stored && f.stored.length > 0) this.countDown(this.storedPath(f));
  }

  /** One file of the bundle at path fewer to read: with none left, the bundle is dropped. */
  private countDown(path: string): void {
    const counts = this.bundleCounts();
    const left = (counts.get(path) ?? 1) - 1;
    counts.set(path, left);
    if (left <= 0) this.bundles.delete(path);
  }

  /** How many files of each bundle are still to be read. */
  private bundleCounts(): Map<string, number> {
    if (this.bundleFiles === null) {
      this.bundleFiles = new Map();
      for (const x of this.manifest.files) {
        if ('bundle' in x.stored && x.stored.length > 0) {
          const p = this.storedPath(x);
          this.bundleFiles.set(p, (this.bundleFiles.get(p) ?? 0) + 1);
        }
      }
    }
    return this.bundleFiles;
  }
}

/**
 * Files in the order a restore should read them on storage with no local files: unbundled ones
 * largest first, then the bundled ones bundle by bundle (each bundle is then read once and held
 * only while its files are written).
 */
export function bundledLast<T extends ManifestFile>(files: T[]): T[] {
  const key = (f: T) => ('bundle' in f.stored ? f.stored.bundle : -1);
  const set = (f: T) => f.reference ?? '';
  return [...files].sort((a, b) => (key(a) === -1) !== (key(b) === -1) ? key(a) - key(b) : key(a) === -1 ? b.size - a.size : set(a) < set(b) ? -1 : set(a) > set(b) ? 1 : key(a) - key(b));
}

/** Stored objects are whole frames of 1 MiB: zstd's are decoded natively, frame by frame, on the thread pool. */
function decoderFor(algorithm: CompressionAlgorithm): Transform {
  return (algorithm === 'zstd' ? createZstdFrameDecoder() : null) ?? createDecompressor(algorithm);
}


/** The digest a manifest entry records (parseManifest checked there is one). */
function recorded(f: ManifestFile): FileDigest {
  return digestOf(f)!;
}

function verifier(f: ManifestFile, where: string): Transform {
  const want = recorded(f);
  const hash = createDigest(want.algorithm);
  let size = 0;
  return new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = hash.digestHex();
      if (size !== f.size || got !== want.hex) {
        cb(damaged(f, where, size !== f.size ? `${size} bytes instead of ${f.size}` : digestMismatch(want, got)));
      } else cb();
    },
  });
}

function missing(f: ManifestFile, where: string): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `stored file ${where} of "${f.path}" is missing`, {
    hint: 'the repository is damaged; run pgpitr verify, and restore another backup',
  });
}

function damaged(f: ManifestFile, where: string, why: string): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `stored file ${where} of "${f.path}" is damaged: ${why}`, {
    hint: 'the repository is damaged; run pgpitr verify, and restore another backup',
  });
}
