// The database system a WAL segment file on disk belongs to, from its first page's
// long header (xlp_sysid): what tells one cluster's WAL from another's.

import { closeSync, openSync, readSync } from 'node:fs';
import { WAL_LONG_HEADER_SIZE, parseWalLongPageHeader } from './wal-page-header.js';

/** The system identifier the file's first page names; null when it cannot be read or is too short to tell. */
export function systemIdOfWalFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const head = Buffer.alloc(WAL_LONG_HEADER_SIZE);
    const n = readSync(fd, head, 0, head.length, 0);
    return parseWalLongPageHeader(head.subarray(0, n))?.systemIdentifier ?? null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
