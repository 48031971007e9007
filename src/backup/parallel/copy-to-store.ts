// A parallel backup's file into a file store (a repository's backup set): small
// files whole, compressed and hashed by the reader when the store takes them so;
// large ones streamed in the store's form as the reader produces it, with the
// frame index restore cuts them at; files unchanged since the prior backup
// (diff, incr) or kept from an interrupted run (--resume) referenced, not read.

import { crc32cText } from '../../storage/filter/crc32c.js';
import { ChunkQueue } from '../../storage/chunk-queue.js';
import { PgpitrError } from '../../common/errors.js';
import type { FileStore, StoredFileMeta } from '../sink.js';
import type { EncodedDigests } from '../../repo/backup-set/writer.js';
import type { FrameIndex } from '../../repo/backup-set/manifest.js';
import type { ListedFile } from './listing.js';
import type { ReadDone } from './read-job.js';
import { reusable } from './copy-journal.js';
import { copyStartUs, jobFor, keptChecksum, record, runWhole } from './copy-context.js';
import type { CopyContext } from './copy-context.js';
import { restat } from './pgdata-walk.js';

/** Into a file store: small files whole, large ones in the store's form as the reader produces it. */
export async function copyToStore(ctx: CopyContext, f: ListedFile, store: FileStore): Promise<void> {
  // Dropped since it was listed: left out, as the server and a full copy leave it out; never the
  // prior backup's copy of it, which a diff or incr would otherwise take (nothing reads the file).
  if (!restat(f)) return;
  const meta: StoredFileMeta = { path: f.manifestPath, size: f.size, mode: f.mode, mtime: f.mtime };
  // A resumed repository backup: the interrupted run's copy stands when the source has not changed
  // since (the copy journal's rule) and its stored bytes still check; its CRC-32C is then the
  // backup_manifest's checksum, which a repository backup's manifest uses.
  // A diff or incr backup: a file unchanged since the prior backup is that backup's copy, not read.
  const same = store.unchanged?.(meta) ?? null;
  const sameChecksum = same ? keptChecksum(ctx, same) : undefined;
  if (same && sameChecksum !== undefined) {
    store.reference!(meta, same);
    record(ctx, f, f.size, sameChecksum, [], false);
    return;
  }
  const prev = store.previous?.(f.manifestPath) ?? null;
  const checksum = prev ? keptChecksum(ctx, prev) : undefined;
  if (prev && checksum !== undefined && reusable(prev, f) && (await store.keep!(meta, prev))) {
    record(ctx, f, f.size, checksum, [], false);
    return;
  }
  // Journaled by the store once durable; withdrawn below when its pages failed their checksums
  // (a resumed run keeps a file without reading it again).
  meta.resumable = { mtimeUs: f.mtimeUs, startedUs: copyStartUs(ctx) };
  // The file as its reader found it (runWhole looks again at one resized since).
  const seen = () => {
    meta.size = f.size;
    meta.mtime = f.mtime;
    meta.resumable = { mtimeUs: f.mtimeUs, startedUs: meta.resumable!.startedUs };
  };
  const clean = (r: ReadDone) => {
    if (r.failures.length > 0 || r.partialPage) meta.resumable = null;
  };
  if (store.isSmall(f.size)) {
    // Compressed and hashed by the reader when the store takes it so: small files are most of a
    // cluster's files, and the main thread, which hands out every job, must not do their work.
    const stored = store.addSmallStored !== undefined;
    const parts: Buffer[] = [];
    const r = await runWhole(ctx, f, () => jobFor(ctx, f, stored ? { encode: { ...store.encoding, crc32c: true } } : {}), (data) => void parts.push(data));
    if (r.gone) return;
    seen();
    clean(r);
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (stored) await store.addSmallStored!(meta, data, { xxh128: r.xxh128!, crc32c: crc32cText(r.crc32c!) }, r.length);
    else await store.addSmall(meta, data);
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    return;
  }
  // The store learns of the file with its first bytes: a file dropped before it was opened leaves no trace.
  const stored = new ChunkQueue();
  let settle!: { resolve(d: EncodedDigests): void; reject(e: Error): void };
  const digests = new Promise<EncodedDigests>((resolve, reject) => (settle = { resolve, reject }));
  digests.catch(() => {});
  // Where the stored bytes may be cut for restore (manifest.ts FrameIndex): each chunk the reader
  // compressed is a frame of its own, so the offset of the one starting at each INDEX_EVERY.
  const index = new FrameIndexer(store.encoding.compression !== 'none');
  let added: Promise<void> | null = null;
  try {
    // Chunks (as read, or compressed) are lent when the store is done with one once it takes the next.
    const lend = store.releasesChunks === true;
    const r = await runWhole(ctx, f, () => jobFor(ctx, f, { encode: { ...store.encoding, crc32c: true }, lend }), async (data, release, read) => {
      if (!added) seen();
      added ??= store.addLarge(meta, stored, digests);
      await added;
      index.chunk(data.length, read);
      await stored.push(data, lend ? release : undefined);
    });
    if (r.gone) return;
    if (!added) {
      // Emptied since it was looked at (a log file truncated at rotation): an empty file, stored whole.
      if (r.length !== 0) throw new PgpitrError('ERR_INTERNAL', `no bytes came for "${f.manifestPath}"`);
      seen();
      await store.addSmall(meta, Buffer.alloc(0));
      record(ctx, f, 0, r.checksumHex, r.failures, r.partialPage);
      return;
    }
    stored.end();
    clean(r);
    settle.resolve({ xxh128: r.xxh128!, crc32c: crc32cText(r.crc32c!), index: index.result(r.length) });
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
  } catch (e) {
    settle.reject(e as Error);
    stored.fail(e as Error);
    throw e;
  }
}

/** Original bytes between two entries of a frame index (restore cuts a large file there). */
const INDEX_EVERY = 32 * 1024 * 1024;

/** Builds a file's frame index from its chunks, each one frame (or none: compression none needs no index). */
class FrameIndexer {
  private stored = 0;
  private read = 0;
  private readonly offsets: number[] = [];
  private aligned = true;

  constructor(private readonly framed: boolean) {}

  chunk(storedBytes: number, readBytes: number): void {
    if (this.read > 0 && this.read % INDEX_EVERY === 0) this.offsets.push(this.stored);
    // A cut must fall on a chunk's start: a chunk across a multiple of the step leaves the file uncut.
    if ((Math.floor(this.read / INDEX_EVERY) + 1) * INDEX_EVERY < this.read + readBytes) this.aligned = false;
    this.stored += storedBytes;
    this.read += readBytes;
  }

  result(size: number): FrameIndex | undefined {
    if (!this.framed || !this.aligned || size <= INDEX_EVERY || this.read !== size) return undefined;
    return this.offsets.length === Math.ceil(size / INDEX_EVERY) - 1 ? { every: INDEX_EVERY, stored: this.offsets } : undefined;
  }
}
