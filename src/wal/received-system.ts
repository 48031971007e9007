// Directory mode (-D): the WAL already received must be the server's database system's. Pointed
// at another cluster (a rebuilt primary, a virtual IP moved to another system, a typo in -h), a
// receiver would resume at the same position on the other system's history, overwrite the
// .partial there and mix two systems' WAL in one directory (pg_receivewal checks nothing).
// Repository mode checks the stanza instead. The newest file whose first page can be read says:
// uncompressed, or gzip (its start inflated); lz4 files and a .partial not written yet are passed.

import { openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, constants as zlib } from 'node:zlib';
import { PgpitrError } from '../common/errors.js';
import { headerOfSegment, WAL_LONG_HEADER_SIZE } from '../postgres/wal-page-header.js';
import { parseReceivedFileName } from './received-file-names.js';

/** Throws (ERR_TARGET) when the newest readable WAL file of `dir` is another system's than `system`. */
export function refuseOtherSystem(dir: string, names: string[], system: string, segmentSize: number): void {
  const files = names
    .map((n) => ({ n, f: parseReceivedFileName(n, segmentSize) }))
    .filter((x) => x.f !== null && x.f.compression !== 'lz4')
    .sort((a, b) => (a.f!.segNo === b.f!.segNo ? b.f!.timeline - a.f!.timeline : a.f!.segNo < b.f!.segNo ? 1 : -1));
  for (const { n, f } of files) {
    const start = firstBytes(join(dir, n), f!.compression === 'gzip');
    const header = start === null ? null : headerOfSegment(f!.segment, start);
    if (header === null) continue; // a .partial not written yet (zeros), a file it cannot read: the next
    if (header.systemIdentifier === system) return;
    throw new PgpitrError('ERR_TARGET', `${dir} holds WAL of database system ${header.systemIdentifier} (${n}), and the server is system ${system}: receiving it there would mix two clusters' WAL and overwrite what was received`, {
      hint: 'point -D at a directory of this server\'s own (or -h/-p at the server that directory\'s WAL came from)',
    });
  }
}

/** The first bytes of a file (inflated when gzip), enough for a long page header; null when it cannot be read. */
function firstBytes(path: string, gzip: boolean): Buffer | null {
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
