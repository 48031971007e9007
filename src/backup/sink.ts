// Where a base backup's tar files go. The engine drives a sink with the events
// of the BASE_BACKUP stream; plain-sink.ts extracts, tar-sink.ts writes tar
// files. Both also provide the SegmentStore for -X stream.

import type { TablespaceHeader } from '../protocol/base-backup-stream.js';
import type { SegmentStore } from './wal/segment-store.js';
import type { CompressionAlgorithm } from '../storage/compress/common.js';
import type { SetJournalEntry } from '../repo/backup-set/set-journal.js';
import type { EncodedDigests } from '../repo/backup-set/writer.js';
import type { ManifestFile } from '../repo/backup-set/manifest.js';

/** A file as a store of individual files records it (its path relative to the data directory, tablespaces under pg_tblspc/<oid>/). */
export interface StoredFileMeta {
  path: string;
  size: number;
  mode: number;
  mtime: number;
  /**
   * For a store that journals what it stored (so that an interrupted backup can be resumed):
   * the source's modification time (µs) as listed and when its copy began. Set to null
   * before the file's SHA-256 is given to withdraw it (its pages failed their checksums).
   */
  resumable?: { mtimeUs: number; startedUs: number } | null | undefined;
}

/**
 * A sink that stores files one by one (a repository's backup set): a parallel
 * backup hands it files directly, in any order and several at once, large ones
 * already in their stored form, instead of through the tar stream.
 */
export interface FileStore {
  /** The stored form of large files, which the readers produce. */
  readonly encoding: { compression: CompressionAlgorithm | 'none'; level: number | undefined };
  /** A file this small is handed whole, as read (addSmall). */
  isSmall(size: number): boolean;
  addSmall(meta: StoredFileMeta, data: Buffer): Promise<void>;
  /**
   * A small file already in the stored form (`encoding`), with the SHA-256 and CRC-32C of its
   * `length` bytes: the readers compress and hash small files too when the store takes them so.
   */
  addSmallStored?(meta: StoredFileMeta, stored: Buffer, digests: Omit<EncodedDigests, 'index'>, length: number): Promise<void>;
  /**
   * True when addLarge's writer is done with a chunk of `stored` once it asks for the next
   * (it keeps no reference to it): a chunk pushed with a release callback is then released.
   */
  readonly releasesChunks?: boolean;
  /**
   * Resolves once the store has room; the stored bytes then flow through `stored`, the SHA-256,
   * CRC-32C (crc32cText) and frame index of the file's own bytes come at the end.
   */
  addLarge(meta: StoredFileMeta, stored: AsyncIterable<Buffer>, digests: Promise<EncodedDigests>): Promise<void>;
  /** True when the store resumes an interrupted backup (previous() may then name earlier copies). */
  readonly resuming?: boolean;
  /** What the interrupted backup this store resumes stored of a file, per its journal. */
  previous?(path: string): SetJournalEntry | null;
  /**
   * Keeps that copy as this backup's when its stored bytes still check (the caller has
   * checked that the source did not change since); false: copy the file again.
   */
  keep?(meta: StoredFileMeta, copy: SetJournalEntry): Promise<boolean>;
  /** A diff or incr backup: the prior backup's entry when the file did not change since (BackupSetWriter.unchanged). */
  unchanged?(meta: StoredFileMeta): ManifestFile | null;
  /** Records such a file as this backup's without reading it. */
  reference?(meta: StoredFileMeta, entry: ManifestFile): void;
}

/** A tar file that readers write members into directly (BackupSink.directTar). */
export interface DirectTar {
  /** The file: readers open it to write, never to create. */
  path: string;
  /** Writes out what tarData() was given so far; the position the next byte goes to. */
  position(): Promise<number>;
  /** The readers filled the file up to `position`: the next tarData() byte goes there. */
  continueAt(position: number): void;
}

export interface BackupSink {
  /** Called once BASE_BACKUP is sent, while the server runs its checkpoint: load what writing will need. */
  prepare?(): void;
  /** Called once the server has listed the tablespaces, before any tar file. */
  prepareTablespaces(list: TablespaceHeader[]): void;
  tarBegin(name: string, tablespace: TablespaceHeader | null): void | Promise<void>;
  tarData(chunk: Buffer): void | Promise<void>;
  /**
   * Asks the sink to keep no reference to a tar chunk once tarData() returned or its promise
   * settled (it writes or copies the bytes by then), so that a parallel backup's readers may
   * reuse that memory. Called before the first tar file; true when the sink will, false (or
   * absent) when it cannot (a stage such as a compressor may hold chunks).
   */
  lendTarData?(): boolean;
  /**
   * Asks the sink to take its tar files' bytes already compressed as the user asked (frames of
   * storage/compress/sync-encoder.ts, concatenated, as its own compressor writes them), so that
   * a parallel backup's readers compress. Called before the first tar file; the compression
   * to apply to every tarData() chunk from then on, or null (or absent) when the sink
   * compresses itself (or nothing). The WAL and the manifest are not concerned.
   */
  precompressTar?(): { compression: CompressionAlgorithm; level: number | undefined } | null;
  tarEnd(): Promise<void>;
  manifestBegin(): void | Promise<void>;
  manifestData(chunk: Buffer): void | Promise<void>;
  manifestEnd(): Promise<void>;
  walStore(segmentSize: number): SegmentStore;
  /**
   * Plain files on this host: the directory a tablespace's files go to (null: the
   * main data directory), where a parallel backup's workers may write them
   * themselves once the tar stream has made the directories. Absent: every
   * file comes through the tar stream.
   */
  directRoot?(tablespace: TablespaceHeader | null): string;
  /** Files one by one (see FileStore); the tar stream then carries only directories, links and the last files. */
  fileStore?(): FileStore;
  /**
   * The tar file begun last, when it is an uncompressed file on this host that nothing
   * rewrites: a parallel backup's readers may then write members into it themselves, each at
   * a place it reserves (DirectTar). Null (or absent): every byte comes through tarData().
   */
  directTar?(): DirectTar | null;
  /** Everything received: write -R files, sync, put the manifest in place. */
  finish(): Promise<void>;
  /** Stop writing; leaves clean-up of files to OutputDirs. */
  abort(): void;
}
