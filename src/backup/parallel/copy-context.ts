// What each way of copying a listed file in a parallel backup shares
// (file-copy.ts, copy-to-store.ts): the copy's context, the read job for a
// file, running it with errors that name the file, and recording the result in
// the backup_manifest and the checksum report.

import type { BackupManifestBuilder } from '../../postgres/backup-manifest.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { PgpitrError } from '../../common/errors.js';
import type { ListedFile } from './listing.js';
import type { FileReaders, JobHandlers, ReadDone, ReadJob } from './read-job.js';
import type { ChecksumReport } from './checksum-report.js';
import type { CopyJournal, JournalEntry } from './copy-journal.js';
import type { DestCreator } from './dest-creator.js';
import { restat } from './pgdata-walk.js';
import { hostClock } from './source-clock.js';
import type { SourceClock } from './source-clock.js';

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
  /** When a copy begins, on the clock of the files' times (source-clock.ts): what the journal records. Absent: this host's. */
  clock?: SourceClock | undefined;
}

/** Now on the clock of the files' times (CopyContext.clock). */
export function copyStartUs(ctx: CopyContext): number {
  return (ctx.clock ?? hostClock)();
}

export function jobFor(ctx: CopyContext, f: ListedFile, o: Partial<Pick<ReadJob, 'source' | 'verify' | 'offset' | 'length' | 'dest' | 'encode' | 'checksum' | 'discard' | 'lend'>> = {}): ReadJob {
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

export function run(ctx: CopyContext, f: ListedFile, job: ReadJob, chunk: JobHandlers['chunk'] | null): Promise<ReadDone> {
  return ctx.readers.run(job, chunk && { chunk }).catch((e: Error & { path?: string }) => Promise.reject(copyError(e, f)));
}

/** Times a whole file found resized when opened is looked at again before it is copied as it is then (cut or padded, the server's rule). */
const RESIZED_TRIES = 3;

/**
 * Runs the job `make` gives for the whole file f (made again from f after each look): a file
 * outside the relation directories (which WAL replay repairs) found with another size when its
 * reader opens it was rewritten since it was looked at (restat); it is looked at again and read
 * as it is now. A -j backup lists every file first and queues many at once: without this, a
 * postgresql.auto.conf replaced meanwhile would be copied cut short or padded with zeros.
 */
export async function runWhole(ctx: CopyContext, f: ListedFile, make: () => ReadJob, chunk: JobHandlers['chunk'] | null): Promise<ReadDone> {
  const checked = f.local && !/^(base|global|pg_tblspc)\//.test(f.manifestPath);
  for (let tries = 1; ; tries++) {
    const job = make();
    if (checked && tries <= RESIZED_TRIES) job.wholeFile = true;
    const r = await run(ctx, f, job, chunk);
    if (r.resized === undefined) return r;
    restat(f);
  }
}

export function copyError(e: Error & { path?: string }, f: ListedFile): PgpitrError {
  if (e instanceof PgpitrError) return e;
  return new PgpitrError('ERR_STORAGE', e.message, { hint: e.path === f.source ? `the file is "${f.manifestPath}" of the data directory` : 'check the target file system (space, permissions)', cause: e });
}

export function record(ctx: CopyContext, f: ListedFile, length: number, checksumHex: string | null, failures: ReadDone['failures'], partialPage: boolean): void {
  ctx.checksums.add(f.serverName, failures, partialPage);
  ctx.manifest?.addFile({ path: f.manifestPath, size: length, mtime: f.mtime, checksumAlgorithm: ctx.algorithm ?? 'NONE', checksumHex: checksumHex ?? '' });
}

/** The backup_manifest checksum of a stored copy kept from an interrupted run; undefined: the journal lacks it (copy again). */
export function keptChecksum(ctx: CopyContext, prev: { crc32c?: string | undefined }): string | null | undefined {
  if (ctx.algorithm === null) return null;
  if (ctx.algorithm === 'CRC32C' && prev.crc32c !== undefined) return crc32cHex(Number.parseInt(prev.crc32c, 16));
  return undefined;
}
