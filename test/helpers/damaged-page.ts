// A damaged page for the checksum tests: 16 bytes flipped in the tuples of block 1 of a relation
// file of a stopped cluster, the page header (LSN, checksum) left as it was, so that the page's
// checksum no longer matches.

import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export function damageBlockOne(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    const bytes = Buffer.alloc(16);
    readSync(fd, bytes, 0, 16, 8192 + 5000);
    for (let i = 0; i < bytes.length; i++) bytes[i]! ^= 0xff;
    writeSync(fd, bytes, 0, 16, 8192 + 5000);
  } finally {
    closeSync(fd);
  }
}
