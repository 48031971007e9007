// What restore's main thread and its copier threads (copy-thread.ts,
// copy-worker.ts) say to each other: one file to restore, and how it went.

import type { StoredCompression } from '../storage/compress/sync-decoder.js';

export interface CopyJob {
  id: number;
  /** The local file holding the stored bytes, and where in it they are (length -1: to its end). */
  source: string;
  offset: number;
  length: number;
  compression: StoredCompression;
  /** Where the file goes, with the mode, mtime (seconds), size and SHA-256 the manifest records. */
  dest: string;
  mode: number;
  mtime: number;
  size: number;
  sha256: string;
  /** Leave a file already at dest alone when it has the recorded size and SHA-256. */
  delta: boolean;
  /** fsync the file before answering. */
  sync: boolean;
}

export type CopyFailure =
  /** The stored bytes are not there. */
  | 'missing'
  /** The stored bytes do not decode to the recorded size and SHA-256 (detail says how). */
  | 'damaged'
  /** A system call failed on `path` (code: errno's name). */
  | 'system';

export type CopyReply =
  | { id: number; status: 'written' | 'unchanged' }
  /** Not a form the copier decodes: the main thread restores this file through the streaming decoders. */
  | { id: number; status: 'fallback'; why: string }
  | { id: number; status: 'failed'; failure: CopyFailure; detail: string; action?: string; path?: string; code?: string };
