// Has the kernel start writing a file's dirty pages while the rest of the file
// is still being written (Linux sync_file_range with SYNC_FILE_RANGE_WRITE: it
// neither waits nor makes anything durable by itself), so that the fsync that
// ends a large file finds little left to write instead of stalling its thread,
// and the disk, on a whole gigabyte at once. A no-op where libc or koffi is not
// there: the fsync still does all the work then.

import { bindNativeLibrary } from '../native-library.js';

const SYNC_FILE_RANGE_WRITE = 2;
/** Bytes written between two requests: large enough that the calls cost nothing, small enough to keep the disk busy. */
export const WRITE_BEHIND_STEP = 8 << 20;

type SyncFileRange = (fd: number, offset: number, length: number, flags: number) => number;
let syncFileRange: SyncFileRange | null | undefined;

/** Starts writeback of `length` bytes at `offset` of the open file `fd` (advisory: failures are ignored). */
export function startWriteback(fd: number, offset: number, length: number): void {
  if (syncFileRange === undefined) {
    syncFileRange = process.platform === 'linux'
      ? bindNativeLibrary(['libc.so.6'], (lib) => lib.func('int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags)') as unknown as SyncFileRange)
      : null;
  }
  syncFileRange?.(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

/**
 * The bookkeeping of one file written in order from `start`: told how much was written, asks for
 * the writeback of every WRITE_BEHIND_STEP bytes, and of the rest at finish(). Off, it does nothing.
 */
export class WriteBehind {
  private from: number;
  private written = 0;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly on = true,
  ) {
    this.from = start;
  }

  /** `bytes` more were written after the last. */
  wrote(bytes: number): void {
    this.written += bytes;
    if (this.written >= WRITE_BEHIND_STEP) this.finish();
  }

  /** Asks for what was written since the last request. */
  finish(): void {
    if (!this.on || this.written === 0) return;
    startWriteback(this.fd, this.from, this.written);
    this.from += this.written;
    this.written = 0;
  }
}
