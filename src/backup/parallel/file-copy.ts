// The ways one listed file reaches its sink in a parallel backup, each through
// the readers (FileReaders) and each recording the file in the backup_manifest
// and its page checksum failures in the report:
//   - through the tar stream, in turn (tar format, or any sink without a better way);
//   - written by the reader at a local path (plain format on this host), large
//     files as ranges read at once whose CRC-32Cs are combined;
//   - into a file store (a repository's backup set), any order, several at once,
//     large files compressed and hashed by the reader.

import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import type { BackupManifestBuilder } from '../../postgres/backup-manifest.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32cCombine } from '../../storage/filter/crc32c-combine.js';
import { ChunkQueue } from '../../storage/chunk-queue.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import type { FileStore } from '../sink.js';
import type { ListedFile } from './listing.js';
import type { FileReaders, ReadDone, ReadJob } from './read-job.js';
import type { ChecksumReport } from './checksum-report.js';
import type { TarWriter } from './tar-writer.js';

export interface CopyContext {
  readers: FileReaders;
  startLsn: bigint;
  /** The backup_manifest's checksum (null: no manifest). */
  algorithm: ManifestChecksumAlgorithm | null;
  checksums: ChecksumReport;
  manifest: BackupManifestBuilder | null;
}

/** Ranges of a large file copied by different readers at once. */
const RANGE = 32 * 1024 * 1024;

function jobFor(ctx: CopyContext, f: ListedFile, o: Partial<Pick<ReadJob, 'offset' | 'length' | 'dest' | 'encode' | 'checksum'>> = {}): ReadJob {
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
  };
}

function run(ctx: CopyContext, f: ListedFile, job: ReadJob, chunk: ((data: Buffer) => void | Promise<void>) | null): Promise<ReadDone> {
  return ctx.readers.run(job, chunk && { chunk }).catch((e: Error & { path?: string }) => Promise.reject(copyError(e, f)));
}

function copyError(e: Error & { path?: string }, f: ListedFile): PgpitrError {
  if (e instanceof PgpitrError) return e;
  return new PgpitrError('ERR_STORAGE', e.message, { hint: e.path === f.source ? `the file is "${f.manifestPath}" of the data directory` : 'check the target file system (space, permissions)', cause: e });
}

function record(ctx: CopyContext, f: ListedFile, length: number, checksumHex: string | null, failures: ReadDone['failures'], partialPage: boolean): void {
  ctx.checksums.add(f.manifestPath, failures, partialPage);
  ctx.manifest?.addFile({ path: f.manifestPath, size: length, mtime: f.mtime, checksumAlgorithm: ctx.algorithm ?? 'NONE', checksumHex: checksumHex ?? '' });
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
    const r = await run(ctx, f, jobFor(ctx, f), async (data) => {
      await begin();
      await tar.data(data);
    });
    if (r.gone) return;
    await begin();
    await tar.pad(f.size);
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
  } finally {
    turn.done();
  }
}

/** Written by the reader at dest (created there, O_EXCL|O_NOFOLLOW); large files in ranges when the checksum allows it. */
export async function copyToPath(ctx: CopyContext, f: ListedFile, dest: string): Promise<void> {
  const mode = f.mode & 0o777;
  const combinable = ctx.algorithm === null || ctx.algorithm === 'NONE' || ctx.algorithm === 'CRC32C';
  if (f.size <= 2 * RANGE || !combinable) {
    const r = await run(ctx, f, jobFor(ctx, f, { dest: { path: dest, mode, create: true, sync: false } }), null);
    if (!r.gone) record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    return;
  }
  createEmptyFile(dest, mode);
  const ranges: Promise<ReadDone>[] = [];
  for (let offset = 0; offset < f.size; offset += RANGE) {
    const length = Math.min(RANGE, f.size - offset);
    const checksum = ctx.algorithm === 'CRC32C' ? 'CRC32C' : null;
    ranges.push(run(ctx, f, jobFor(ctx, f, { offset, length, checksum, dest: { path: dest, mode, create: false, sync: false } }), null));
  }
  const done = await Promise.all(ranges);
  if (done.some((r) => r.gone)) {
    // Dropped while it was copied: left out, as a file gone before its copy.
    removeFile(dest);
    return;
  }
  let crc = done[0]!.crc32c ?? 0;
  for (const r of done.slice(1)) crc = crc32cCombine(crc, r.crc32c ?? 0, r.length);
  const hex = ctx.algorithm === 'CRC32C' ? crc32cHex(crc) : null;
  record(ctx, f, f.size, hex, done.flatMap((r) => r.failures), done.some((r) => r.partialPage));
}

/** Into a file store: small files whole, large ones in the store's form as the reader produces it. */
export async function copyToStore(ctx: CopyContext, f: ListedFile, store: FileStore): Promise<void> {
  const meta = { path: f.manifestPath, size: f.size, mode: f.mode, mtime: f.mtime };
  if (store.isSmall(f.size)) {
    const parts: Buffer[] = [];
    const r = await run(ctx, f, jobFor(ctx, f), (data) => void parts.push(data));
    if (r.gone) return;
    await store.addSmall(meta, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    record(ctx, f, r.length, r.checksumHex, r.failures, r.partialPage);
    return;
  }
  // The store learns of the file with its first bytes: a file dropped before it was opened leaves no trace.
  const stored = new ChunkQueue();
  let settle!: { resolve(sha: string): void; reject(e: Error): void };
  const sha256 = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  sha256.catch(() => {});
  let added: Promise<void> | null = null;
  try {
    const r = await run(ctx, f, jobFor(ctx, f, { encode: store.encoding }), async (data) => {
      added ??= store.addLarge(meta, stored, sha256);
      await added;
      await stored.push(data);
    });
    if (r.gone) return;
    if (!added) throw new PgpitrError('ERR_INTERNAL', `no bytes came for "${f.manifestPath}"`);
    stored.end();
    settle.resolve(r.sha256!);
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

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    throw storageError('remove', path, e);
  }
}
