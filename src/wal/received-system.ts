// Directory mode (-D): the WAL already received must be the server's database system's. Pointed
// at another cluster (a rebuilt primary, a virtual IP moved to another system, a typo in -h), a
// receiver would resume at the same position on the other system's history, overwrite the
// .partial there and mix two systems' WAL in one directory (pg_receivewal checks nothing).
// Repository mode checks the stanza instead. The newest file whose first page can be read says:
// uncompressed, or gzip (its start inflated); lz4 files and a .partial not written yet are passed.

import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { headerOfSegment } from '../postgres/wal-page-header.js';
import { walFileHead } from '../postgres/wal-file-system.js';
import { parseReceivedFileName } from './received-file-names.js';

/** Throws (ERR_TARGET) when the newest readable WAL file of `dir` is another system's than `system`. */
export function refuseOtherSystem(dir: string, names: string[], system: string, segmentSize: number): void {
  const files = names
    .map((n) => ({ n, f: parseReceivedFileName(n, segmentSize) }))
    .filter((x) => x.f !== null && x.f.compression !== 'lz4')
    .sort((a, b) => (a.f!.segNo === b.f!.segNo ? b.f!.timeline - a.f!.timeline : a.f!.segNo < b.f!.segNo ? 1 : -1));
  for (const { n, f } of files) {
    const start = walFileHead(join(dir, n), f!.compression === 'gzip');
    const header = start === null ? null : headerOfSegment(f!.segment, start);
    if (header === null) continue; // a .partial not written yet (zeros), a file it cannot read: the next
    if (header.systemIdentifier === system) return;
    throw new PgpitrError('ERR_TARGET', `${dir} holds WAL of database system ${header.systemIdentifier} (${n}), and the server is system ${system}: receiving it there would mix two clusters' WAL and overwrite what was received`, {
      hint: 'point -D at a directory of this server\'s own (or -h/-p at the server that directory\'s WAL came from)',
    });
  }
}
