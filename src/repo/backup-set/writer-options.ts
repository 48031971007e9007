// What a backup set writer (writer.ts) is told: its options, the prior set a
// diff or incr backup is compared with, and what it is told of each file.

import type { Storage } from '../../storage/storage.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import type { FrameIndex, ManifestFile } from './manifest.js';
import type { SetJournalEntry, SetJournalWriter } from './set-journal.js';

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
  /** Told why a resumed set does not keep a stored copy (the file is then copied again). */
  notice?: (message: string) => void;
  /** Journals what is stored (files handed over with `resumable` facts), for a later --resume. */
  journal?: SetJournalWriter | undefined;
  /** Taking over an interrupted run's set: its journal, and the number its new bundles start at. */
  resume?: { previous: ReadonlyMap<string, SetJournalEntry>; firstBundle: number } | undefined;
  /** A diff or incr backup: the backup it is compared with (unchanged()). */
  prior?: PriorSet | undefined;
}

/** The backup a diff or incr is compared with: its id, its manifest's files, and its time limit. */
export interface PriorSet {
  id: string;
  files: ReadonlyMap<string, ManifestFile>;
  /**
   * Seconds since the epoch, by the server's clock: a file whose modification time (whole
   * seconds) is below it was last written before the prior backup started. It is the whole
   * second of record.ts server_start_time less one: a time recorded as m was written before
   * m + 1 plus the few milliseconds the kernel's clock for it may lag.
   */
  modifiedBefore: number;
  /** Files of the prior backup whose stored bytes are gone (left out of `files`: they are stored again). */
  missing?: number;
}

/** What is known of an encoded file's original bytes once they all came (addEncodedFile). */
export interface EncodedDigests {
  /** The set's digest (content-digest.ts SET_DIGEST) of the original bytes. */
  xxh128: string;
  /** crc32cText */
  crc32c: string;
  index?: FrameIndex | undefined;
}

export interface FileMeta {
  path: string;
  size: number;
  mode: number;
  mtime: number;
  /**
   * What a resumed run needs to judge the stored copy: the source's modification time (µs)
   * as listed and when the copy began. Absent or null: not journaled. Read once the
   * file's digest is known, so that a caller may still withdraw it (page checksum failures).
   */
  resumable?: { mtimeUs: number; startedUs: number } | null | undefined;
}
