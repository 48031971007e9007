// What the parallel backup's main thread and its reader threads (read-worker.ts,
// behind read-pool.ts) say to each other: one file (or one range of a file) to
// read, verify and either hand back in chunks or write to a local path, and how
// it went. Shared memory (shared-counters.ts) carries what must not wait for a
// message: flow credits, the rate budget, bytes done, the abort flag.

import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import type { ErrorCode } from '../../common/errors.js';

export interface ReadJob {
  id: number;
  /** The file on this host. */
  source: string;
  /** The name in messages (the backup_manifest path). */
  name: string;
  /** Where to start and how many bytes to give: the size seen when the file was listed (the server's rule: a file that grew is cut, one that shrank is padded with zeros). */
  offset: number;
  length: number;
  /** Verify page checksums: the block number of the file's first page (segment number × blocks per segment), and the backup's start LSN as a decimal string. */
  verify: { blockBase: number; startLsn: string } | null;
  /** The backup_manifest checksum of these bytes (null: none, or computed elsewhere). */
  checksum: ManifestChecksumAlgorithm | null;
  /**
   * Hand the bytes back in a store's form: compressed (storage/compress/sync-encoder.ts
   * frames; 'none': as read), with the XXH3-128 of what was read (a backup set's digest,
   * repo/backup-set/content-digest.ts) unless `digest` is false, and its CRC-32C when `crc32c` is true.
   * Only without dest.
   */
  encode: { compression: CompressionAlgorithm | 'none'; level: number | undefined; digest?: boolean; crc32c?: boolean } | null;
  /** Read and checksum only: hand nothing back (checking a file an earlier run copied). */
  discard?: boolean;
  /**
   * The whole file, whose size (`length`) was looked at a while before: when the open file's size
   * is another, nothing is read and the reply says so (`resized`): the caller looks again and asks
   * anew (copy-context.ts runWhole). Honoured by readers of this host's files.
   */
  wholeFile?: boolean;
  /**
   * Chunks handed back as read may be views of buffers the reader reuses: their handler is
   * given a release() to call once it holds no reference to the bytes any more (see JobHandlers).
   */
  lend?: boolean;
  /**
   * Write the bytes to this local file (created by the main thread when `offset` > 0) instead of handing them back:
   * byte `offset` of the source at `at + offset` of the file (`at`: 0 unless given). With `tarHeader`, the file is a
   * tar file written directly (BackupSink.directTar): the reader, once the source is open, reserves the member's
   * place (SharedCounters.reserveTar), writes the header there, the bytes after it, and zeros to the block's end.
   * With `writeBehind` (the file is synced later, not by this job), the kernel is asked to start writing what
   * the job wrote as it goes (storage/posix/write-behind.ts): the sync at the end then finds little left.
   */
  dest: { path: string; mode: number; create: boolean; sync: boolean; at?: number; tarHeader?: Uint8Array; writeBehind?: boolean } | null;
}

export interface ChecksumFailure {
  block: number;
  calculated: number;
  expected: number;
}

export type ReadReply =
  /** A piece of the file, in order (only when the job has no dest): `read` bytes of the source, as read or encoded. */
  | { id: number; kind: 'chunk'; data: Uint8Array; read: number }
  | {
      id: number;
      kind: 'done';
      /** The file was gone when opened (dropped since it was listed): the server leaves it out too. */
      gone: boolean;
      /** A `wholeFile` job whose file had another size when opened (that size): nothing was read. */
      resized?: number;
      /** The bytes given (the job's length, zero padding included). */
      length: number;
      checksumHex: string | null;
      /** The CRC-32C itself when that is the checksum (ranges of one file are combined from it), or encode asked for it. */
      crc32c: number | null;
      /** With encode: the XXH3-128 of the bytes read, and the bytes handed back. */
      xxh128: string | null;
      encodedBytes: number;
      failures: ChecksumFailure[];
      /** Pages left unverified because the file ended inside one. */
      partialPage: boolean;
    }
  | {
      id: number;
      kind: 'failed';
      message: string;
      path: string;
      /** The system error's code (ENOENT, ...). */
      code?: string | undefined;
      /** A PgpitrError's code and hint, kept across the thread boundary (the sql readers' connection and server errors). */
      error?: { code: ErrorCode; hint?: string | undefined; detail?: string | undefined } | undefined;
    };

export type ReadDone = Extract<ReadReply, { kind: 'done' }>;

export interface JobHandlers {
  /**
   * A chunk of the job's bytes, in order; the reader goes on once the promise settles (flow
   * control). `release`, when given (a job with `lend`), is called by the handler once nothing
   * refers to `data` any more: its memory is then read into again, so a chunk released while
   * still queued or being written would be overwritten. Never calling it is always safe (the
   * buffer is then left to the collector, as one that was not lent).
   */
  chunk(data: Buffer, release: (() => void) | undefined, read: number): void | Promise<void>;
}

/**
 * The readers of one parallel backup, whatever the read method: threads reading
 * this host's data directory (read-pool.ts), or connections reading through the
 * server's file functions. parallel-backup.ts knows only this.
 */
export interface FileReaders {
  readonly size: number;
  /** Jobs may carry a local `dest` (the readers run on this host and write files themselves). */
  readonly writesLocal: boolean;
  /** Bytes read so far by all readers (for progress of jobs that write locally). */
  readonly doneBytes: number;
  /** One rate for all readers together (-r), in bytes per second. */
  limitRate(bytesPerSecond: number): void;
  /** The backup is lost: every job fails with `e`, at once. */
  abort(e: Error): void;
  /** Runs a job on the next free reader; resolves with its answer. */
  run(job: ReadJob, handlers: JobHandlers | null): Promise<ReadDone>;
  /** The places of members in a tar file the readers write directly (dest.tarHeader), shared with them. */
  readonly tarPlaces: TarPlaces;
  stop(): Promise<void>;
}

/** Where members go in a tar file written directly (BackupSink.directTar): shared by the main thread and the readers. */
export interface TarPlaces {
  /** The end of what is reserved: set by the main thread before the readers start. */
  tarEnd: number;
  /** Reserves `bytes` at the end: their position. */
  reserveTar(bytes: number): number;
}
