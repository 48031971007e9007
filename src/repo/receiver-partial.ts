// The segment receive-wal is receiving into a posix repository (<stanza>/receive-wal/<name>.partial):
// WAL the server has sent, and, in synchronous mode, acknowledged commits, that the archive does
// not hold yet. A recovery to the end of the archive that loses its primary gets it from here (as a
// DBA would copy a pg_receivewal .partial into pg_wal): archive-get hands it over for the segment
// after the archive's last, padded to a segment's size; PostgreSQL replays its records up to the
// last whole one and ends recovery there. Only a file whose first page is that segment's, of this
// system, is taken. An object store holds none (receive-wal keeps it in a local spool there); an
// encrypted repository's is not read (receive-wal writes it as received, not through the cipher).

import { parseWalLongPageHeader, segmentNameMismatch } from '../postgres/wal-page-header.js';
import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { RECEIVER_DIR, stanzaPath } from './layout.js';
import type { Repository } from './repository.js';

/** The received part of segment `name`, zero-padded to the segment size, or null when there is none fit to hand over. */
export async function receiverPartial(repo: Repository, stanza: string, name: string, segmentSize: number, systemId: string | null): Promise<Buffer | null> {
  if (repo.encryption) return null;
  const data = await readAll(repo.storage, storageJoin(stanzaPath(stanza), RECEIVER_DIR, `${name}.partial`));
  if (data === null || data.length > segmentSize) return null;
  const h = parseWalLongPageHeader(data);
  if (h === null || h.segmentSize !== segmentSize || segmentNameMismatch(name, h, segmentSize) !== null) return null;
  if (systemId !== null && h.systemIdentifier !== systemId) return null;
  if (data.length === segmentSize) return data;
  const whole = Buffer.alloc(segmentSize);
  data.copy(whole);
  return whole;
}
