// The ways one listed file reaches its sink in a parallel backup, each through
// the readers (FileReaders) and each recording the file in the backup_manifest
// and its page checksum failures in the report:
//   - through the tar stream, in turn (tar format, or any sink without a better way);
//   - written by the reader as a member of a tar file on this host, at a place it
//     reserves (BackupSink.directTar), large files as ranges read at once;
//   - written by the reader at a local path (plain format on this host), large
//     files as ranges read at once whose CRC-32Cs are combined;
//   - into a file store (a repository's backup set), any order, several at once,
//     large files compressed and hashed by the reader.

import { closeSync, constants, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import type { BackupManifestBuilder } from '../../postgres/backup-manifest.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32cCombine } from '../../storage/filter/crc32c-combine.js';
import { crc32c, crc32cText } from '../../storage/filter/crc32c.js';
import { ChunkQueue } from '../../storage/chunk-queue.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import type { FileStore, StoredFileMeta } from '../sink.js';
import type { EncodedDigests } from '../../repo/backup-set/writer.js';
import type { FrameIndex } from '../../repo/backup-set/manifest.js';
import type { ListedFile } from './listing.js';
import type { FileReaders, JobHandlers, ReadDone, ReadJob, TarPlaces } from './read-job.js';
import { encodeHeader, paddingFor } from '../../storage/tar/tar-header.js';
import type { ChecksumReport } from './checksum-report.js';
import type { TarWriter } from './tar-writer.js';
import type { CopyJournal, JournalEntry } from './copy-journal.js';
import { journalKey, reusable } from './copy-journal.js';
import type { DestCreator } from './dest-creator.js';

/** A backup into a directory keeps a journal of what it copied; a resumed one also has the journal of the run it resumes. */
export interface ResumeState {
  journal: CopyJournal;
  previous: ReadonlyMap<string, JournalEntry>;
  kept: { files: number; bytes: number };
}

export interface CopyContext {
  readers: FileReaders;
  resume?: ResumeState | undefined;
  startLsn: bigint;
  /** The backup_manifest's checksum (null: no manifest). */
  algorithm: ManifestChecksumAlgorithm | null;
  checksums: ChecksumReport;
  manifest: BackupManifestBuilder | null;
  /** Creates the files readers write on this host, ahead of them (dest-creator.ts); without it they create their own. */
  creator?: DestCreator | undefined;
  /** What readers write on this host is synced once the copy is over (not -N): they start its writeback as they go. */
  writeBehind?: boolean | undefined;
}

/** Ranges of a large file copied by different readers at once, each journaled on its own: small enough that an interrupted run loses little. */
export const RANGE = 8 * 1024 * 1024;

function jobFor(ctx: CopyContext, f: ListedFile, o: Partial<Pick<ReadJob, 'source' | 'verify' | 'offset' | 'length' | 'dest' | 'encode' | 'checksum' | 'discard' | 'lend'>> = {}): ReadJob {
  return {
    id: 0,
    source: f.source,
    name: f.manifestPath,
    offset: 0,
    length: f.size,
    verify: f.blockBase === null ? null : { blockBase: f.blockBase, startLsn: ctx.startLsn.toString() },
    checksum: ctx.algorithm,
    dest: null,
    encode: null,
    ...o,
    ...(o.dest && ctx.writeBehind ? { dest: { ...o.dest, writeBehind: true } } : {}),
  };
}

function run(ctx: CopyContext, f: ListedFile, job: ReadJob, chunk: JobHandlers['chunk'] | null): Promise<ReadDone> {
  return ctx.readers.run(job, chunk && { chunk }).catch((e: Error & { path?: string }) => Promise.reject(copyError(e, f)));
}

function copyError(e: Error & { path?: string }, f: ListedFile): PgpitrError {
  if (e instanceof PgpitrError) return e;
  return new PgpitrError('ERR_STORAGE', e.message, { hint: e.path === f.source ? `the file is "${f.manifestPath}" of the data directory` : 'check the target file system (space, permissions)', cause: e });
}

function record(ctx: CopyContext, f: ListedFile, length: number, checksumHex: string | null, failures: ReadDone['failures'], partialPage: boolean): void {
  ctx.checksums.add(f.serverName, failures, partialPage);
  ctx.manifest?.addFile({ path: f.manifestPath, size: length, mtime: f.mtime, checksumAlgorithm: ctx.algorithm ?? 'NONE', checksumHex: checksumHex ?? '' });
}

/** How readers hand a tar member's bytes back: compressed when the sink takes them so, else lent when it can. */
function tarJob(tar: TarWriter): Pick<ReadJob, 'encode' | 'lend'> {
  return { encode: tar.encoding ? { ...tar.encoding, digest: false } : null, lend: tar.releases };
}

/** Into the tar stream: the member's header when its first bytes come (a file dropped meanwhile has none), in its turn. */
export async function copyThroughTar(ctx: CopyContext, f: ListedFile, tar: TarWriter): Promise<void> {
  const turn = tar.turn();
  let begun = false;
  const begin = async () => {
    if (begun) return;
    begun = true;
    await turn.wait;
    await tar.entry({ name: f.name, type: 'file', size: f.size, mode: f.mode, mtime: f.mtime, linkname: '' });
  };
  try {
    if (f.size > 2 * TAR_RANGE && (ctx.algorithm === null || ctx.algorithm === 'NONE' || ctx.algorithm === 'CRC32C')) {
      await tarInRanges(ctx, f, tar, begin);
      return;
    }
    const r = await run(ctx, f, jobFor(ctx, f, tarJob(tar)), async (data, release) => {
      await begin();
      await tar.data(data);
      if (tar.releases) release?.();
    });
    if (r.gone) return;
    await begin();
    await tar.pad(f.size);
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
  } finally {
    turn.done();
  }
}

/**
 * Ranges of a large file into the tar stream: read by any free reader at once,
 * written in order (each range's bytes wait for the range before), their
 * CRC-32Cs combined. Without ranges one reader reads a 1 GiB segment alone while
 * the others wait for its turn to end.
 */
export const TAR_RANGE = 4 * 1024 * 1024;

async function tarInRanges(ctx: CopyContext, f: ListedFile, tar: TarWriter, begin: () => Promise<void>): Promise<void> {
  let leftOut = false;
  let before: Promise<unknown> = Promise.resolve();
  const ranges: Promise<{ crc: number; length: number; failures: ReadDone['failures']; partialPage: boolean }>[] = [];
  for (let offset = 0; offset < f.size; offset += TAR_RANGE) {
    const length = Math.min(TAR_RANGE, f.size - offset);
    const previous = before;
    const range = (async () => {
      const r = await run(ctx, f, jobFor(ctx, f, { offset, length, checksum: 'CRC32C', ...tarJob(tar) }), async (data, release) => {
        await previous; // a range before that failed fails this one: nothing is written after it
        if (leftOut) return;
        await begin();
        await tar.data(data);
        if (tar.releases) release?.();
      });
      await previous;
      if (!r.gone) return { crc: r.crc32c ?? 0, length: r.length, failures: r.failures, partialPage: r.partialPage };
      // Gone when its first range was opened: left out, as a file dropped before its copy. Gone
      // later (dropped midway): zeros to its listed size, as the server sends for a file that shrank.
      if (offset === 0) leftOut = true;
      const zeros = Buffer.alloc(length);
      if (!leftOut) {
        await begin();
        await tar.own(zeros);
      }
      return { crc: crc32c(zeros), length, failures: [], partialPage: false };
    })();
    ranges.push(range);
    before = range;
  }
  // Every range settled before the turn passes on: none may still write into the tar after a failure.
  await Promise.allSettled(ranges);
  const done = await Promise.all(ranges);
  if (leftOut) return;
  await begin();
  await tar.pad(f.size);
  const checksum = ctx.algorithm === 'CRC32C' ? crc32cHex(combinedCrc(done)) : null;
  record(ctx, f, f.size, checksum, done.flatMap((r) => r.failures), done.some((r) => r.partialPage));
}

/**
 * A member of a tar file the readers write directly (BackupSink.directTar): in any order,
 * several at once, each where its reader reserved it once the source was open (a file
 * dropped since it was listed takes no place). A large file is reserved here and read in
 * ranges by any free reader; dropped in the meantime, its bytes are zeros, as the server
 * sends for a file that shrank.
 */
export async function copyIntoTar(ctx: CopyContext, f: ListedFile, tarPath: string, places: TarPlaces): Promise<void> {
  const header = encodeHeader({ name: f.name, type: 'file', size: f.size, mode: f.mode, mtime: f.mtime, linkname: '' });
  const inRanges = f.size > 2 * TAR_RANGE && (ctx.algorithm === null || ctx.algorithm === 'NONE' || ctx.algorithm === 'CRC32C');
  if (!inRanges) {
    const r = await run(ctx, f, jobFor(ctx, f, { dest: { path: tarPath, mode: 0, create: false, sync: false, tarHeader: header } }), null);
    if (r.gone) return;
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    return;
  }
  if (!isRegularFile(f.source)) return; // dropped since it was listed: left out
  const pad = paddingFor(f.size);
  const at = places.reserveTar(header.length + f.size + pad);
  writeAtPath(tarPath, pad > 0 ? [[header, at], [Buffer.alloc(pad), at + header.length + f.size]] : [[header, at]]);
  const ranges: Promise<{ crc: number; length: number; failures: ReadDone['failures']; partialPage: boolean }>[] = [];
  for (let offset = 0; offset < f.size; offset += TAR_RANGE) {
    const length = Math.min(TAR_RANGE, f.size - offset);
    ranges.push(
      (async () => {
        const r = await run(ctx, f, jobFor(ctx, f, { offset, length, checksum: 'CRC32C', dest: { path: tarPath, mode: 0, create: false, sync: false, at: at + header.length } }), null);
        // Gone: the range's place holds zeros (never written), as the server sends for a file that shrank.
        if (r.gone) return { crc: crc32c(Buffer.alloc(length)), length, failures: [], partialPage: false };
        return { crc: r.crc32c ?? 0, length: r.length, failures: r.failures, partialPage: r.partialPage };
      })(),
    );
  }
  const done = await Promise.all(ranges);
  const checksum = ctx.algorithm === 'CRC32C' ? crc32cHex(combinedCrc(done)) : null;
  record(ctx, f, f.size, checksum, done.flatMap((r) => r.failures), done.some((r) => r.partialPage));
}

/** Positioned writes into an existing file (a tar file written directly). */
function writeAtPath(path: string, parts: [Buffer, number][]): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (e) {
    throw storageError('open', path, e);
  }
  try {
    for (const [bytes, position] of parts) {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
    }
  } catch (e) {
    throw storageError('write to', path, e);
  } finally {
    closeSync(fd);
  }
}

/** The CRC-32C of a file from those of its consecutive ranges. */
function combinedCrc(ranges: { crc: number; length: number }[]): number {
  let crc = ranges[0]!.crc;
  for (const r of ranges.slice(1)) crc = crc32cCombine(crc, r.crc, r.length);
  return crc;
}

/** The journal's checksum: the manifest's, or CRC-32C when the manifest has none (a kept file is always checked). */
function journalAlgorithm(ctx: CopyContext): ManifestChecksumAlgorithm {
  return ctx.algorithm && ctx.algorithm !== 'NONE' ? ctx.algorithm : 'CRC32C';
}

/**
 * Written by the reader at dest (created there, O_EXCL|O_NOFOLLOW); large files in ranges
 * when the checksum allows it. In a resumed backup, a file the interrupted run copied is
 * kept when its source has not changed since and its bytes still match their checksum.
 */
export async function copyToPath(ctx: CopyContext, f: ListedFile, dest: string): Promise<void> {
  const algorithm = journalAlgorithm(ctx);
  const mode = f.mode & 0o777;
  if (f.size <= 2 * RANGE || algorithm !== 'CRC32C') {
    const prev = ctx.resume?.previous.get(journalKey(f.manifestPath));
    if (prev && (prev.length ?? prev.size) === f.size && (await keptCopy(ctx, f, prev, dest, 0, f.size))) {
      record(ctx, f, f.size, prev.checksum, [], false);
      return;
    }
    if (ctx.resume?.previous.has(journalKey(f.manifestPath))) removeIfThere(dest);
    const startedUs = Date.now() * 1000;
    // Made ahead by the creator (the reader then opens it), unless the readers got here first.
    const claim = ctx.creator?.claim(dest) ?? 'job';
    if (claim !== 'job') await claim;
    const created = claim !== 'job';
    const r = await run(ctx, f, jobFor(ctx, f, { checksum: algorithm, dest: { path: dest, mode, create: !created, sync: false } }), null);
    if (r.gone) {
      // Dropped since it was listed: the file made for it goes too.
      if (created) removeIfThere(dest);
      return;
    }
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    ctx.resume?.journal.record({ path: f.manifestPath, size: r.length, mtime_us: f.mtimeUs, started_us: startedUs, algorithm, checksum: r.checksumHex ?? '' });
    return;
  }
  // In ranges: each range is copied (and journaled) on its own, so a resumed run keeps the ranges
  // done; the file is there only when the resume sweep kept it for them.
  if (!isRegularFile(dest)) createEmptyFile(dest, mode);
  const ranges: Promise<{ crc: number; length: number; gone: boolean; failures: ReadDone['failures']; partialPage: boolean }>[] = [];
  for (let offset = 0; offset < f.size; offset += RANGE) {
    const length = Math.min(RANGE, f.size - offset);
    ranges.push(copyRange(ctx, f, dest, offset, length));
  }
  const done = await Promise.all(ranges);
  if (done.some((r) => r.gone)) {
    // Dropped while it was copied: left out, as a file gone before its copy.
    removeFile(dest);
    return;
  }
  record(ctx, f, f.size, crc32cHex(combinedCrc(done)), done.flatMap((r) => r.failures), done.some((r) => r.partialPage));
}

async function copyRange(ctx: CopyContext, f: ListedFile, dest: string, offset: number, length: number) {
  const prev = ctx.resume?.previous.get(journalKey(f.manifestPath, offset));
  if (prev && prev.length === length && (await keptCopy(ctx, f, prev, dest, offset, length))) {
    return { crc: crcOfHex(prev.checksum), length, gone: false, failures: [], partialPage: false };
  }
  const startedUs = Date.now() * 1000;
  const r = await run(ctx, f, jobFor(ctx, f, { offset, length, checksum: 'CRC32C', dest: { path: dest, mode: f.mode & 0o777, create: false, sync: false } }), null);
  if (!r.gone) ctx.resume?.journal.record({ path: f.manifestPath, size: f.size, mtime_us: f.mtimeUs, started_us: startedUs, algorithm: 'CRC32C', checksum: r.checksumHex ?? '', offset, length });
  return { crc: r.crc32c ?? 0, length: r.length, gone: r.gone, failures: r.failures, partialPage: r.partialPage };
}

/**
 * Whether the bytes an interrupted run copied (from offset, length long) can stand in this
 * backup: the source has not changed since (reusable), and they still match their checksum.
 * Kept bytes are journaled again and counted.
 */
async function keptCopy(ctx: CopyContext, f: ListedFile, prev: JournalEntry, dest: string, offset: number, length: number): Promise<boolean> {
  if (!reusable(prev, f) || prev.algorithm !== journalAlgorithm(ctx)) return false;
  const r = await run(ctx, f, jobFor(ctx, f, { source: dest, offset, length, verify: null, checksum: prev.algorithm, discard: true }), null);
  if (r.gone || r.checksumHex !== prev.checksum) return false;
  ctx.resume!.journal.record(prev);
  ctx.resume!.kept.files += offset === 0 ? 1 : 0;
  ctx.resume!.kept.bytes += length;
  return true;
}

/** The CRC-32C value back from the manifest's hex (host byte order, see crc32cHex). */
function crcOfHex(hex: string): number {
  return new Uint32Array(new Uint8Array(Buffer.from(hex, 'hex')).buffer)[0]!;
}

/** The backup_manifest checksum of a stored copy kept from an interrupted run; undefined: the journal lacks it (copy again). */
function keptChecksum(ctx: CopyContext, prev: { crc32c?: string | undefined }): string | null | undefined {
  if (ctx.algorithm === null) return null;
  if (ctx.algorithm === 'CRC32C' && prev.crc32c !== undefined) return crc32cHex(Number.parseInt(prev.crc32c, 16));
  return undefined;
}

/** Into a file store: small files whole, large ones in the store's form as the reader produces it. */
export async function copyToStore(ctx: CopyContext, f: ListedFile, store: FileStore): Promise<void> {
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
  meta.resumable = { mtimeUs: f.mtimeUs, startedUs: Date.now() * 1000 };
  const clean = (r: ReadDone) => {
    if (r.failures.length > 0 || r.partialPage) meta.resumable = null;
  };
  if (store.isSmall(f.size)) {
    // Compressed and hashed by the reader when the store takes it so: small files are most of a
    // cluster's files, and the main thread, which hands out every job, must not do their work.
    const stored = store.addSmallStored !== undefined;
    const parts: Buffer[] = [];
    const job = jobFor(ctx, f, stored ? { encode: { ...store.encoding, crc32c: true } } : {});
    const r = await run(ctx, f, job, (data) => void parts.push(data));
    if (r.gone) return;
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
    const r = await run(ctx, f, jobFor(ctx, f, { encode: { ...store.encoding, crc32c: true }, lend }), async (data, release, read) => {
      added ??= store.addLarge(meta, stored, digests);
      await added;
      index.chunk(data.length, read);
      await stored.push(data, lend ? release : undefined);
    });
    if (r.gone) return;
    if (!added) throw new PgpitrError('ERR_INTERNAL', `no bytes came for "${f.manifestPath}"`);
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

function createEmptyFile(path: string, mode: number): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode));
  } catch (e) {
    throw storageError('create', path, e);
  }
}

function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageError('inspect', path, e);
  }
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('remove', path, e);
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    throw storageError('remove', path, e);
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
