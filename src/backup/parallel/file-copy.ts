// The ways one listed file reaches its sink in a parallel backup, each through
// the readers (FileReaders) and each recording the file in the backup_manifest
// and its page checksum failures in the report:
//   - through the tar stream, in turn (tar format, or any sink without a better way);
//   - written by the reader as a member of a tar file on this host, at a place it
//     reserves (BackupSink.directTar), large files as ranges read at once;
//   - written by the reader at a local path (plain format on this host), large
//     files as ranges read at once whose CRC-32Cs are combined;
//   - into a file store (a repository's backup set): copy-to-store.ts.

import { closeSync, constants, lstatSync, openSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32cCombine } from '../../storage/filter/crc32c-combine.js';
import { crc32c } from '../../storage/filter/crc32c.js';
import { storageError } from '../../common/errors.js';
import type { ListedFile } from './listing.js';
import { copyStartUs, jobFor, record, run, runWhole } from './copy-context.js';
import { restat } from './pgdata-walk.js';
import type { CopyContext } from './copy-context.js';
import type { ReadDone, ReadJob, TarPlaces } from './read-job.js';
import { encodeHeader, paddingFor } from '../../storage/tar/tar-header.js';
import type { TarWriter } from './tar-writer.js';
import type { JournalEntry } from './copy-journal.js';
import { journalKey, reusable } from './copy-journal.js';
import { createExclusiveSync, setFileModeSync } from '../../storage/posix/exact-mode.js';

/** Ranges of a large file copied by different readers at once, each journaled on its own: small enough that an interrupted run loses little. */
export const RANGE = 8 * 1024 * 1024;

/** How readers hand a tar member's bytes back: compressed when the sink takes them so, else lent when it can. */
function tarJob(tar: TarWriter): Pick<ReadJob, 'encode' | 'lend'> {
  return { encode: tar.encoding ? { ...tar.encoding, digest: false } : null, lend: tar.releases };
}

/** Into the tar stream: the member's header when its first bytes come (a file dropped meanwhile has none), in its turn. */
export async function copyThroughTar(ctx: CopyContext, f: ListedFile, tar: TarWriter): Promise<void> {
  restat(f);
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
    const r = await runWhole(ctx, f, () => jobFor(ctx, f, tarJob(tar)), async (data, release, read) => {
      await begin();
      await tar.data(data, read);
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
      const r = await run(ctx, f, jobFor(ctx, f, { offset, length, checksum: 'CRC32C', ...tarJob(tar) }), async (data, release, read) => {
        await previous; // a range before that failed fails this one: nothing is written after it
        if (leftOut) return;
        await begin();
        await tar.data(data, read);
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
  restat(f);
  const headerOf = () => encodeHeader({ name: f.name, type: 'file', size: f.size, mode: f.mode, mtime: f.mtime, linkname: '' });
  const inRanges = f.size > 2 * TAR_RANGE && (ctx.algorithm === null || ctx.algorithm === 'NONE' || ctx.algorithm === 'CRC32C');
  if (!inRanges) {
    const r = await runWhole(ctx, f, () => jobFor(ctx, f, { dest: { path: tarPath, mode: 0, create: false, sync: false, tarHeader: headerOf() } }), null);
    if (r.gone) return;
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    return;
  }
  if (!isRegularFile(f.source)) return; // dropped since it was listed: left out
  const header = headerOf();
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
 * Written by the reader at dest (created there, O_EXCL|O_NOFOLLOW, with exactly the source's
 * mode, as pg_basebackup chmods what it extracts); large files in ranges when the checksum
 * allows it. In a resumed backup, a file the interrupted run copied is kept when its source
 * has not changed since and its bytes still match their checksum; it takes the source's mode.
 */
export async function copyToPath(ctx: CopyContext, f: ListedFile, dest: string): Promise<void> {
  restat(f);
  const algorithm = journalAlgorithm(ctx);
  const mode = f.mode & 0o777;
  if (f.size <= 2 * RANGE || algorithm !== 'CRC32C') {
    const prev = ctx.resume?.previous.get(journalKey(f.manifestPath));
    if (prev && (prev.length ?? prev.size) === f.size && sizeOf(dest) === f.size && (await keptCopy(ctx, f, prev, dest, 0, f.size))) {
      setMode(dest, mode);
      record(ctx, f, f.size, prev.checksum, [], false);
      return;
    }
    // Resumed: what the sweep kept at dest (for any entry of the path, a range's too) and this copy
    // does not reuse goes, or the reader's exclusive create fails on it.
    if (ctx.resume !== undefined && ctx.resume.previous.size > 0) removeIfThere(dest);
    const startedUs = copyStartUs(ctx);
    // Made ahead by the creator (the reader then opens it), unless the readers got here first.
    const claim = ctx.creator?.claim(dest) ?? 'job';
    if (claim !== 'job') await claim;
    const created = claim !== 'job';
    const r = await runWhole(ctx, f, () => jobFor(ctx, f, { checksum: algorithm, dest: { path: dest, mode, create: !created, sync: false } }), null);
    if (r.gone) {
      // Dropped since it was listed: the file made for it goes too.
      if (created) removeIfThere(dest);
      return;
    }
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    // A copy with pages failing their checksum is never kept by a --resume: it would be taken as verified.
    if (r.failures.length === 0 && !r.partialPage) ctx.resume?.journal.record({ path: f.manifestPath, size: r.length, mtime_us: f.mtimeUs, started_us: startedUs, algorithm, checksum: r.checksumHex ?? '', pages_verified: f.blockBase !== null });
    return;
  }
  // In ranges: each range is copied (and journaled) on its own, so a resumed run keeps the ranges
  // done; the file is there only when the resume sweep kept it for them. Claimed like any other:
  // the creator, unclaimed, would make it (again) after a drop removed it below.
  const claim = ctx.creator?.claim(dest) ?? 'job';
  if (claim !== 'job') await claim;
  else if (!isRegularFile(dest)) createEmptyFile(dest, mode);
  else {
    // A kept copy longer than the source is now (truncated since: VACUUM): its tail is not the file's.
    cutTo(dest, f.size);
    setMode(dest, mode);
  }
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
  const startedUs = copyStartUs(ctx);
  const r = await run(ctx, f, jobFor(ctx, f, { offset, length, checksum: 'CRC32C', dest: { path: dest, mode: f.mode & 0o777, create: false, sync: false } }), null);
  if (!r.gone && r.failures.length === 0 && !r.partialPage) ctx.resume?.journal.record({ path: f.manifestPath, size: f.size, mtime_us: f.mtimeUs, started_us: startedUs, algorithm: 'CRC32C', checksum: r.checksumHex ?? '', offset, length, pages_verified: f.blockBase !== null });
  return { crc: r.crc32c ?? 0, length: r.length, gone: r.gone, failures: r.failures, partialPage: r.partialPage };
}

/**
 * Whether the bytes an interrupted run copied (from offset, length long) can stand in this
 * backup: the source has not changed since (reusable), and they still match their checksum.
 * Kept bytes are journaled again and counted.
 */
async function keptCopy(ctx: CopyContext, f: ListedFile, prev: JournalEntry, dest: string, offset: number, length: number): Promise<boolean> {
  if (!reusable(prev, f) || prev.algorithm !== journalAlgorithm(ctx)) return false;
  // Copied unverified (--no-verify-checksums) and verified now: a damaged page must not pass unseen.
  if (f.blockBase !== null && prev.pages_verified === false) return false;
  // A copy shorter than what it stands for would be read with zeros past its end, which may match.
  if (sizeOf(dest) < offset + length) return false;
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

function createEmptyFile(path: string, mode: number): void {
  try {
    closeSync(createExclusiveSync(path, mode));
  } catch (e) {
    throw storageError('create', path, e);
  }
}

/** A kept copy (--resume) takes the source's mode as a new one would: the interrupted run's may differ. */
function setMode(path: string, mode: number): void {
  try {
    setFileModeSync(path, mode);
  } catch (e) {
    throw storageError('set the mode of', path, e);
  }
}

function sizeOf(path: string): number {
  try {
    return lstatSync(path).size;
  } catch {
    return -1;
  }
}

function cutTo(path: string, size: number): void {
  if (sizeOf(path) <= size) return;
  try {
    truncateSync(path, size);
  } catch (e) {
    throw storageError('truncate', path, e);
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
