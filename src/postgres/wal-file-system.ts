// The first bytes of a WAL file on disk, and the database system its first page's long
// header names (xlp_sysid): what tells one cluster's WAL from another's.

import { closeSync, openSync, readSync } from 'node:fs';
import { gunzipSync, constants as zlib } from 'node:zlib';
import { WAL_LONG_HEADER_SIZE, parseWalLongPageHeader } from './wal-page-header.js';

/** The first bytes of a file (inflated when gzip), enough for a long page header; null when it cannot be read. */
export function walFileHead(path: string, gzip = false): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(gzip ? 64 * 1024 : WAL_LONG_HEADER_SIZE);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (!gzip) return buf.subarray(0, n);
    // A gzip file's start: inflated as far as it goes.
    return gunzipSync(buf.subarray(0, n), { finishFlush: zlib.Z_SYNC_FLUSH });
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The system identifier an uncompressed WAL file's first page names; null when it cannot be read or is too short to tell. */
export function systemIdOfWalFile(path: string): string | null {
  const head = walFileHead(path);
  return head === null ? null : (parseWalLongPageHeader(head)?.systemIdentifier ?? null);
}
