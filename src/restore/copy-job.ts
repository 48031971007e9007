// What restore's main thread and its copier threads (copy-thread.ts,
// copy-worker.ts) say to each other: one file to restore, its stored bytes
// when the main thread streams them, and how it went.

import type { StoredCompression } from '../storage/compress/sync-decoder.js';
import type { FileDigest } from '../repo/backup-set/content-digest.js';

export interface CopyJob {
  id: number;
  /**
   * The local file holding the stored bytes, and where in it they are (length -1: to its end);
   * null: the main thread sends them (the copier answers 'send', then gets chunk and end messages).
   */
  source: string | null;
  offset: number;
  length: number;
  /** The stored bytes are encrypted (PGPE, storage/cipher): the data key and the object path its keys are bound to. */
  decrypt: { keyId: Uint8Array; key: Uint8Array; path: string } | null;
  compression: StoredCompression;
  /** Where the file goes, with the mode, mtime (seconds), size, digest and CRC-32C the manifest records. */
  dest: string;
  mode: number;
  mtime: number;
  size: number;
  digest: FileDigest;
  /**
   * The bytes written are checked against this (crc32cText) when the manifest records it, else
   * against the digest (older sets, whose digest was SHA-256: CRC-32C cost a fifth of its CPU).
   * Delta's "already there" compares the digest all the same: it decides what is not written.
   */
  crc32c: string | null;
  /** Leave a file already at dest alone when it has the recorded size and digest. */
  delta: boolean;
  /**
   * One piece of a large file cut across the copiers (file-pieces.ts): the stored bytes (source,
   * offset, length) decode to the original bytes from `at`, `length` of them, written there into
   * dest, which the main thread created. The copier neither creates, checks nor syncs the file:
   * it answers 'written' with the piece's CRC-32C, and the main thread, once every piece is in,
   * checks the whole file against its recorded CRC-32C, sets its mode and time and syncs it.
   */
  piece: { at: number; length: number } | null;
  /** fsync the file before answering. */
  sync: boolean;
}

/** Main thread to copier. */
export type ToCopier =
  | { type: 'job'; job: CopyJob }
  /** The next stored bytes of a streamed job: the first `length` bytes of data (transferred, not copied). */
  | { type: 'chunk'; data: ArrayBuffer; length: number }
  /** The stored bytes of a streamed job are all sent. */
  | { type: 'end' }
  /** The streamed job is given up (its source failed): the copier removes what it wrote and answers 'aborted'. */
  | { type: 'abort' };

export type CopyFailure =
  /** The stored bytes are not there. */
  | 'missing'
  /** The stored bytes do not decode to the recorded size and checksum (detail says how). */
  | 'damaged'
  /** The stored bytes do not decrypt (detail says why: altered, truncated, another object's). */
  | 'undecryptable'
  /** A system call failed on `path` (code: errno's name). */
  | 'system';

export type CopyReply =
  | { id: number; status: 'written' | 'unchanged' | 'aborted'; crc32c?: number }
  /** Not a form the copier decodes: the main thread restores this file through the streaming decoders. */
  | { id: number; status: 'fallback'; why: string }
  | { id: number; status: 'failed'; failure: CopyFailure; detail: string; action?: string; path?: string; code?: string };

/**
 * Copier to main thread: a final reply, or for a streamed job 'send' (ready for its bytes) and one
 * 'ack' per chunk consumed, which hands the chunk's buffer back for the next batch (a fresh one
 * costs a page fault per 4 KiB, which on some virtual machines is slower than the copy itself).
 */
export type FromCopier = CopyReply | { id: number; status: 'send' } | { id: number; status: 'ack'; data: ArrayBuffer };

export function isFinal(m: FromCopier): m is CopyReply {
  return m.status !== 'send' && m.status !== 'ack';
}
