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
