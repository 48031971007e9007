// Writes one backup set through a Storage: each file of the cluster becomes an
// object of its own (large files, streamed through SHA-256 and compression in
// one pass) or a range of a bundle (small files, gathered so that a cluster of
// many small files does not become one object per file). manifest.json is
// written last, once every object is durable; until then the set is not a
// backup.

import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { Storage } from '../../storage/storage.js';
import { applyFilters } from '../../storage/filter/filter.js';
import { sha256Filter, sizeFilter } from '../../storage/filter/measure-filters.js';
import { compressFilter } from '../../storage/filter/compress-filter.js';
import { compressBuffer } from '../../storage/compress/buffer.js';
import { compressionExtension } from '../../storage/compress/levels.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { storageJoin } from '../../storage/storage-path.js';
import { checkClusterPath, serializeManifest } from './manifest.js';
import type { BackupSetManifest, ManifestDirectory, ManifestFile, ManifestTablespace } from './manifest.js';

export interface SetWriterOptions {
  storage: Storage;
  /** The set's directory in the storage, e.g. "main/backup/20261201-101500F". */
  dir: string;
  backupId: string;
  compression: CompressionAlgorithm | 'none';
  level?: number | undefined;
  /** Files up to this size go into bundles (default 64 KiB). */
  bundleFileMax?: number;
  /** A bundle is written once it holds this many stored bytes (default 4 MiB). */
  bundleSize?: number;
  /** Objects written at once (default 4): one streams in, the others finish their sync. */
  parallel?: number;
}

interface FileMeta {
  path: string;
  size: number;
  mode: number;
  mtime: number;
}

export const MANIFEST_NAME = 'manifest.json';

export class BackupSetWriter {
  private readonly files: ManifestFile[] = [];
  private readonly directories: ManifestDirectory[] = [];
  private readonly tablespaces: ManifestTablespace[] = [];
  private serverManifest: string | null = null;
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown = null;
  private bundle: { parts: Buffer[]; bytes: number } = { parts: [], bytes: 0 };
  private bundleCount = 0;
  private readonly ext: string;
  private readonly bundleFileMax: number;
  private readonly bundleSize: number;
  private readonly parallel: number;
  storedBytes = 0;
  originalBytes = 0;

  constructor(private readonly o: SetWriterOptions) {
    this.ext = o.compression === 'none' ? '' : compressionExtension(o.compression);
    this.bundleFileMax = o.bundleFileMax ?? 64 * 1024;
    this.bundleSize = o.bundleSize ?? 4 * 1024 * 1024;
    this.parallel = o.parallel ?? 4;
  }

  /** Whether a file of this size is gathered into a bundle (its data is then wanted whole, by addSmallFile). */
  isSmall(size: number): boolean {
    return size <= this.bundleFileMax;
  }

  addDirectory(path: string, mode: number): void {
    this.directories.push({ path: checkClusterPath(path, 'backup stream'), mode });
  }

  addTablespace(oid: number, location: string): void {
    this.tablespaces.push({ oid, location });
  }

  /** A small file, whole: hashed and compressed now, stored with the next bundle. */
  async addSmallFile(meta: FileMeta, data: Buffer): Promise<void> {
    this.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const sha256 = createHash('sha256').update(data).digest('hex');
    const stored = this.o.compression === 'none' || data.length === 0 ? data : await compressBuffer(this.o.compression, data, this.o.level);
    const entry: ManifestFile = { ...meta, sha256, stored: { bundle: this.bundleCount, offset: this.bundle.bytes, length: stored.length } };
    this.bundle.parts.push(stored);
    this.bundle.bytes += stored.length;
    this.files.push(entry);
    this.originalBytes += data.length;
    if (this.bundle.bytes >= this.bundleSize) await this.flushBundle();
  }

  /**
   * A large file, streamed: resolves once the write has started and there is
   * room for it among the writes in flight; the bytes are hashed, compressed and
   * stored as they come.
   */
  async addLargeFile(meta: FileMeta, data: Readable | AsyncIterable<Buffer>): Promise<void> {
    this.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const object = `data/${meta.path}${this.ext}`;
    const entry: ManifestFile = { ...meta, sha256: '', stored: { object } };
    this.files.push(entry);
    await this.track(async () => {
      const filters = [sha256Filter(), sizeFilter()];
      if (this.o.compression !== 'none') filters.push(compressFilter(this.o.compression, this.o.level));
      filters.push(sizeFilter('stored'));
      const f = applyFilters(data, filters);
      try {
        await this.o.storage.write(storageJoin(this.o.dir, object), f.output);
        await f.done;
      } catch (e) {
        // The writer may fail before it reads a byte (no room, no permission): the source must
        // fail too, or whoever feeds it waits for it to drain forever.
        f.output.destroy(e as Error);
        if ('destroy' in data && typeof data.destroy === 'function') data.destroy(e as Error);
        throw e;
      }
      const r = f.results();
      entry.sha256 = r['sha256'] as string;
      if (r['size'] !== meta.size) throw new Error(`file "${meta.path}" was announced with ${meta.size} bytes and had ${String(r['size'])}`);
      this.originalBytes += meta.size;
      this.storedBytes += r['stored'] as number;
    });
  }

  /** How large files are stored: what a caller that compresses them itself must produce (addEncodedFile). */
  get encoding(): { compression: CompressionAlgorithm | 'none'; level: number | undefined } {
    return { compression: this.o.compression, level: this.o.level };
  }

  /**
   * A large file whose stored bytes come ready — compressed as this set is, by a
   * parallel backup's reader threads — with its SHA-256 known only once they all
   * came. Resolves once the write has started and there is room for it, as addLargeFile.
   */
  async addEncodedFile(meta: FileMeta, stored: AsyncIterable<Buffer>, sha256: Promise<string>): Promise<void> {
    this.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const object = `data/${meta.path}${this.ext}`;
    const entry: ManifestFile = { ...meta, sha256: '', stored: { object } };
    this.files.push(entry);
    let storedBytes = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of stored) {
        storedBytes += chunk.length;
        yield chunk;
      }
    }
    await this.track(async () => {
      await this.o.storage.write(storageJoin(this.o.dir, object), counted());
      entry.sha256 = await sha256;
      this.originalBytes += meta.size;
      this.storedBytes += storedBytes;
    });
  }

  /** The server's backup_manifest, kept as it came (compressed like the rest). */
  async addServerManifest(data: Buffer): Promise<void> {
    const name = `backup_manifest${this.ext}`;
    const stored = this.o.compression === 'none' ? data : await compressBuffer(this.o.compression, data, this.o.level);
    await this.track(() => this.o.storage.write(storageJoin(this.o.dir, name), stored));
    this.serverManifest = name;
  }

  /** Flushes the last bundle, waits for every object to be durable, then writes the manifest. */
  async finish(): Promise<BackupSetManifest> {
    await this.flushBundle();
    await this.drain();
    const manifest: BackupSetManifest = {
      format: 'pgpitr-backup-manifest',
      format_version: 1,
      backup_id: this.o.backupId,
      compression: this.o.compression,
      directories: this.directories,
      files: this.files,
      tablespaces: this.tablespaces,
      server_manifest: this.serverManifest,
    };
    await this.o.storage.write(storageJoin(this.o.dir, MANIFEST_NAME), serializeManifest(manifest), { exclusive: true });
    return manifest;
  }

  /** Waits for what is in flight, ignoring failures (the caller is already failing). */
  async abort(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  private async flushBundle(): Promise<void> {
    if (this.bundle.parts.length === 0) return;
    const { parts, bytes } = this.bundle;
    const name = storageJoin(this.o.dir, `bundle/${this.bundleCount}${this.ext}`);
    this.bundle = { parts: [], bytes: 0 };
    this.bundleCount++;
    this.storedBytes += bytes;
    await this.track(() => this.o.storage.write(name, Readable.from(parts)));
  }

  /** Starts a write once fewer than `parallel` are in flight (the caller may feed it after). */
  private async track(start: () => Promise<void>): Promise<void> {
    while (this.inflight.size >= this.parallel) await Promise.race(this.inflight);
    this.throwIfFailed();
    const tracked = start().then(
      () => {
        this.inflight.delete(tracked);
      },
      (e) => {
        this.inflight.delete(tracked);
        this.failure ??= e;
      },
    );
    this.inflight.add(tracked);
  }

  private async drain(): Promise<void> {
    await Promise.all([...this.inflight]);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}
