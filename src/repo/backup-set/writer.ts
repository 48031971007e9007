// Writes one backup set through a Storage: each file of the cluster becomes an
// object of its own (large files, streamed through their digest and compression in
// one pass) or a range of a bundle (small files, gathered so that a cluster of
// many small files does not become one object per file). manifest.json is
// written last, once every object is durable; until then the set is not a
// backup.
//
// With a journal (set-journal.ts), every file handed over with `resumable`
// facts is journaled once its object or bundle is durable, so that a killed or
// failed run can be taken over (`backup --resume`). A writer that resumes a
// set is given the interrupted run's journal: a file may then be kept (keep():
// its stored bytes read back to their digest), new bundles are numbered after
// the highest already there, and before the manifest is written every object
// of data/ and bundle/ that the manifest does not name is removed.

import { Readable } from 'node:stream';
import { PgpitrError } from '../../common/errors.js';
import { checkJournaledIndex } from './journaled-index.js';
import { applyFilters } from '../../storage/filter/filter.js';
import { crc32cFilter, sizeFilter, xxh128Filter } from '../../storage/filter/measure-filters.js';
import { crc32c, crc32cText } from '../../storage/filter/crc32c.js';
import { compressFilter } from '../../storage/filter/compress-filter.js';
import { compressBuffer } from '../../storage/compress/buffer.js';
import { compressionExtension } from '../../storage/compress/levels.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { storageJoin } from '../../storage/storage-path.js';
import { checkClusterPath, MANIFEST_NAME } from './manifest.js';
import { manifestChunks } from './manifest-text.js';
import type { BackupSetManifest, ManifestDirectory, ManifestFile, ManifestTablespace } from './manifest.js';
import type { SetJournalEntry } from './set-journal.js';
import { BackupSetReader } from './reader.js';
import { digestField, digestHex, digestOf, SET_DIGEST } from './content-digest.js';
import { Slots } from '../../common/slots.js';
import type { EncodedDigests, FileMeta, SetWriterOptions } from './writer-options.js';
import { removeUnreferenced } from './unreferenced-objects.js';
import { BundleBytes } from './bundle-bytes.js';
import { WritesInFlight } from './writes-in-flight.js';
import { drained } from '../../storage/stream-util.js';

/**
 * Files never taken from a prior backup: the ones a backup writes (backup_label, tablespace_map),
 * pg_control (rewritten at every checkpoint), and the WAL a set holds.
 */
function alwaysCopied(path: string): boolean {
  return path === 'backup_label' || path === 'tablespace_map' || path === 'global/pg_control' || path.startsWith('pg_wal/');
}

export { MANIFEST_NAME } from './manifest.js';
export type { EncodedDigests, FileMeta, PriorSet, SetWriterOptions } from './writer-options.js';

export class BackupSetWriter {
  private readonly files: ManifestFile[] = [];
  private readonly directories: ManifestDirectory[] = [];
  private readonly tablespaces: ManifestTablespace[] = [];
  private serverManifest: string | null = null;
  private readonly writes: WritesInFlight;
  /** Interrupted run's copies being read back at once (keep()). */
  private readonly verifySlots: Slots;
  private bundle: { data: BundleBytes; journal: SetJournalEntry[] } = { data: new BundleBytes(), journal: [] };
  private bundleCount: number;
  /**
   * A full bundle's write waiting for a slot: the small files that come meanwhile wait for it too.
   * Otherwise each of a parallel backup's lanes could fill a bundle of its own behind it (measured:
   * six 4 MB bundles held at once at 98,000 files).
   */
  private bundleQueued: Promise<void> | null = null;
  private readonly ext: string;
  private readonly bundleFileMax: number;
  private readonly bundleSize: number;
  private readonly parallel: number;
  storedBytes = 0;
  originalBytes = 0;
  /** Files of an interrupted run kept by keep(), and their original bytes. */
  readonly kept = { files: 0, bytes: 0 };
  /** Files taken from the prior backup by reference(), and their original bytes. */
  readonly referenced = { files: 0, bytes: 0 };

  constructor(private readonly o: SetWriterOptions) {
    this.ext = o.compression === 'none' ? '' : compressionExtension(o.compression);
    this.bundleFileMax = o.bundleFileMax ?? 64 * 1024;
    this.bundleSize = o.bundleSize ?? 4 * 1024 * 1024;
    this.parallel = o.parallel ?? 4;
    this.writes = new WritesInFlight(this.parallel);
    this.verifySlots = new Slots(this.parallel);
    this.bundleCount = o.resume?.firstBundle ?? 0;
  }

  /** Whether this writer takes over an interrupted run's set. */
  get resuming(): boolean {
    return this.o.resume !== undefined;
  }

  /** What the interrupted run this writer resumes stored of a file, if its journal says so. */
  previous(path: string): SetJournalEntry | null {
    return this.o.resume?.previous.get(path) ?? null;
  }

  /**
   * Keeps the interrupted run's copy of a file when its stored bytes still read back (through
   * the storage, decompressed, as verify reads them) to the recorded size and digest; false:
   * the caller copies the file again. The caller has checked that the source did not change.
   */
  async keep(meta: FileMeta, prev: SetJournalEntry): Promise<boolean> {
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const digest = digestOf(prev);
    if (prev.path !== meta.path || prev.size !== meta.size || digest === null) return false;
    const entry: ManifestFile = { path: meta.path, size: meta.size, mode: meta.mode, mtime: meta.mtime, ...digestField(digest), ...(prev.crc32c ? { crc32c: prev.crc32c } : {}), stored: prev.stored, ...(prev.index ? { index: prev.index } : {}) };
    await this.verifySlots.acquire();
    try {
      const reader = BackupSetReader.forObjects(this.o.storage, this.o.dir, this.o.compression);
      await checkJournaledIndex(this.o.storage, reader.storedPath(entry), prev);
      for await (const chunk of await reader.read(entry)) void chunk;
    } catch (e) {
      this.o.notice?.(`${meta.path}: the interrupted run's stored copy is not kept (${(e as Error).message}); copying it again`);
      return false;
    } finally {
      this.verifySlots.release();
    }
    this.files.push(entry);
    this.originalBytes += meta.size;
    this.storedBytes += prev.stored_bytes;
    this.kept.files++;
    this.kept.bytes += meta.size;
    return true;
  }

  /**
   * A diff or incr backup: the prior backup's entry for this file when the file has not changed
   * since that backup copied it: same size, same modification time, and that time before the prior
   * backup started (a file written while it ran may have changed after it was read; it is
   * copied). null: copy the file.
   */
  unchanged(meta: FileMeta): ManifestFile | null {
    const prior = this.o.prior;
    if (!prior || alwaysCopied(meta.path)) return null;
    const p = prior.files.get(meta.path);
    if (!p || p.size !== meta.size || p.mtime !== meta.mtime || !(p.mtime < prior.modifiedBefore) || p.crc32c === undefined || digestOf(p) === null) return null;
    return p;
  }

  /** Records a file unchanged() returned as this backup's, its stored bytes left where they are. */
  reference(meta: FileMeta, p: ManifestFile): void {
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const digest = digestOf(p)!;
    // The prior entry's path (the same text): the listing's copy of it goes with the listing.
    this.files.push({
      path: p.path, size: meta.size, mode: meta.mode, mtime: meta.mtime, ...digestField(digest), crc32c: p.crc32c!, stored: p.stored,
      ...(p.index ? { index: p.index } : {}), reference: p.reference ?? this.o.prior!.id,
    });
    this.originalBytes += meta.size;
    this.referenced.files++;
    this.referenced.bytes += meta.size;
  }

  private journal(meta: FileMeta, entry: ManifestFile, storedBytes: number): SetJournalEntry | null {
    const r = meta.resumable;
    if (!this.o.journal || !r) return null;
    return { path: meta.path, size: meta.size, mtime_us: r.mtimeUs, started_us: r.startedUs, xxh128: entry.xxh128!, ...(entry.crc32c ? { crc32c: entry.crc32c } : {}), stored: entry.stored, ...(entry.index ? { index: entry.index } : {}), stored_bytes: storedBytes };
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
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const xxh128 = digestHex(SET_DIGEST, data);
    const stored = this.o.compression === 'none' || data.length === 0 ? data : await compressBuffer(this.o.compression, data, this.o.level);
    await this.bundleSmall(meta, stored, { xxh128, crc32c: crc32cText(crc32c(data)) }, data.length);
  }

  /**
   * A small file already in its stored form (compressed, or not with compression none, by a
   * backup reader thread, which also took the digests of its `length` bytes): stored with the
   * next bundle. The main thread then does none of a small file's hashing or compressing.
   */
  async addStoredSmallFile(meta: FileMeta, stored: Buffer, digests: Omit<EncodedDigests, 'index'>, length: number): Promise<void> {
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    await this.bundleSmall(meta, stored, digests, length);
  }

  private async bundleSmall(meta: FileMeta, stored: Buffer, digests: Omit<EncodedDigests, 'index'>, length: number): Promise<void> {
    while (this.bundleQueued !== null) await this.bundleQueued;
    this.writes.throwIfFailed();
    const entry: ManifestFile = {
      path: meta.path, size: meta.size, mode: meta.mode, mtime: meta.mtime, xxh128: digests.xxh128, crc32c: digests.crc32c,
      stored: { bundle: this.bundleCount, offset: this.bundle.data.bytes, length: stored.length },
    };
    const journaled = this.journal(meta, entry, stored.length);
    if (journaled) this.bundle.journal.push(journaled);
    this.bundle.data.add(stored);
    this.files.push(entry);
    this.originalBytes += length;
    if (this.bundle.data.bytes >= this.bundleSize) {
      const flushed = this.flushBundle();
      const queued: Promise<void> = flushed.then(noop, noop).finally(() => {
        if (this.bundleQueued === queued) this.bundleQueued = null;
      });
      this.bundleQueued = queued;
      await flushed;
    }
  }

  /**
   * A large file, streamed: resolves once the write has started and there is
   * room for it among the writes in flight; the bytes are hashed, compressed and
   * stored as they come.
   */
  async addLargeFile(meta: FileMeta, data: Readable | AsyncIterable<Buffer>): Promise<void> {
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const object = `data/${meta.path}${this.ext}`;
    const entry: ManifestFile = { path: meta.path, size: meta.size, mode: meta.mode, mtime: meta.mtime, xxh128: '', stored: { object } };
    this.files.push(entry);
    await this.writes.track(async () => {
      const filters = [xxh128Filter(), crc32cFilter(), sizeFilter()];
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
      entry.xxh128 = r['xxh128'] as string;
      entry.crc32c = r['crc32c'] as string;
      if (r['size'] !== meta.size) throw new Error(`file "${meta.path}" was announced with ${meta.size} bytes and had ${String(r['size'])}`);
      this.originalBytes += meta.size;
      this.storedBytes += r['stored'] as number;
      const j = this.journal(meta, entry, r['stored'] as number);
      if (j) this.o.journal!.add(j);
    });
  }

  /** How large files are stored: what a caller that compresses them itself must produce (addEncodedFile). */
  get encoding(): { compression: CompressionAlgorithm | 'none'; level: number | undefined } {
    return { compression: this.o.compression, level: this.o.level };
  }

  /** addEncodedFile's write is done with a chunk once it asks for the next (StorageFeatures.releasesChunks). */
  get releasesChunks(): boolean {
    return this.o.storage.features.releasesChunks === true;
  }

  /**
   * A large file whose stored bytes come ready — compressed as this set is, by a
   * parallel backup's reader threads — with its digest, CRC-32C (crc32cText) and frame
   * index (manifest.ts) known only once they all came. Resolves once the write has started
   * and there is room for it, as addLargeFile.
   */
  async addEncodedFile(meta: FileMeta, stored: AsyncIterable<Buffer>, digests: Promise<EncodedDigests>): Promise<void> {
    this.writes.throwIfFailed();
    checkClusterPath(meta.path, 'backup stream');
    const object = `data/${meta.path}${this.ext}`;
    const entry: ManifestFile = { path: meta.path, size: meta.size, mode: meta.mode, mtime: meta.mtime, xxh128: '', stored: { object } };
    this.files.push(entry);
    let storedBytes = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of stored) {
        storedBytes += chunk.length;
        yield chunk;
      }
    }
    await this.writes.track(async () => {
      try {
        await this.o.storage.write(storageJoin(this.o.dir, object), counted());
      } catch (e) {
        // Whoever feeds the chunks learns why (no room, no permission), not only that they stopped.
        if ('fail' in stored && typeof stored.fail === 'function') stored.fail(e as Error);
        throw e;
      }
      const d = await digests;
      entry.xxh128 = d.xxh128;
      entry.crc32c = d.crc32c;
      if (d.index) entry.index = d.index;
      this.originalBytes += meta.size;
      this.storedBytes += storedBytes;
      const j = this.journal(meta, entry, storedBytes);
      if (j) this.o.journal!.add(j);
    });
  }

  /** The server's backup_manifest, kept as it came (compressed like the rest), from its chunks, each let go once read. */
  async addServerManifest(chunks: Buffer[]): Promise<void> {
    const name = `backup_manifest${this.ext}`;
    await this.writes.track(async () => {
      const f = applyFilters(Readable.from(drained(chunks)), this.o.compression === 'none' ? [] : [compressFilter(this.o.compression, this.o.level)]);
      try {
        await this.o.storage.write(storageJoin(this.o.dir, name), f.output);
        await f.done;
      } catch (e) {
        f.output.destroy(e as Error);
        throw e;
      }
    });
    this.serverManifest = name;
  }

  /**
   * Flushes the last bundle, waits for every object to be durable, then writes the manifest. Its
   * text is made twice (manifest-text.ts: to hash, then to write): nothing may add to the set
   * once this is called (every adder was awaited; the WAL receiver has finished).
   */
  async finish(): Promise<BackupSetManifest> {
    await this.flushBundle();
    await this.writes.drain();
    await this.o.journal?.flush();
    if (this.o.resume) await removeUnreferenced(this.o.storage, this.o.dir, this.files, this.ext);
    const manifest: BackupSetManifest = {
      format: 'pgpitr-backup-manifest',
      format_version: 4,
      backup_id: this.o.backupId,
      compression: this.o.compression,
      directories: this.directories,
      files: this.files,
      tablespaces: this.tablespaces,
      server_manifest: this.serverManifest,
    };
    await this.o.storage.write(storageJoin(this.o.dir, MANIFEST_NAME), Readable.from(manifestChunks(manifest)), { exclusive: true });
    return manifest;
  }

  /**
   * Refuses every write from now on (a parallel backup's other readers go on until their next
   * write, which would store into the set after the lock is let go), waits for those in flight,
   * ignoring failures, then journals what became durable, so that a --resume keeps what it can.
   * Resolves with the first failure of a write (null when none failed): what stopped the backup
   * may be only its echo (a source stream cut when its write gave up).
   */
  async abort(): Promise<unknown> {
    const writeFailure = await this.writes.refuse(new PgpitrError('ERR_STORAGE', 'the backup failed: nothing more is stored'));
    await this.o.journal?.flush().catch(() => {});
    this.o.journal?.close();
    return writeFailure;
  }

  /** Entries journaled by this run, in batches written so far. */
  get journaled(): number {
    return this.o.journal?.written ?? 0;
  }

  private async flushBundle(): Promise<void> {
    if (this.bundle.data.files === 0) return;
    const { data, journal } = this.bundle;
    const bytes = data.bytes;
    const name = storageJoin(this.o.dir, `bundle/${this.bundleCount}${this.ext}`);
    this.bundle = { data: new BundleBytes(), journal: [] };
    this.bundleCount++;
    this.storedBytes += bytes;
    await this.writes.track(async () => {
      await this.o.storage.write(name, Readable.from(data.drain()));
      for (const e of journal) this.o.journal!.add(e);
    });
  }
}

function noop(): void {}
