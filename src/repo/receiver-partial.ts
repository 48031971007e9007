// What receive-wal received into a posix repository that the archive does not hold yet
// (<stanza>/receive-wal/): whole segments waiting to be stored, and the segment it is receiving
// (<name>.partial: in synchronous mode, acknowledged commits). A recovery to the end of the archive
// that lost its primary gets them from here, as a DBA copies a pg_receivewal .partial into pg_wal:
// archive-get puts the segment after the archive's last into pg_wal (a .partial padded to a
// segment's size, marked archived: never stored under the whole name) and answers "not found";
// PostgreSQL reads it there and replays its records up to the last whole one (a whole segment is
// stored in the archive by archive-get, then fetched: read from pg_wal, PostgreSQL would remove it
// at the end of recovery, unarchived). Only a file
// whose first page is that segment's, of this system, is taken. An object store holds none
// (receive-wal keeps it in a local spool there); an encrypted repository's is not read
// (receive-wal writes it as received, not through the cipher).

import { headerOfSegment } from '../postgres/wal-page-header.js';
import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { RECEIVER_DIR, stanzaPath } from './layout.js';
import type { Repository } from './repository.js';

/** What receive-wal received of segment `name` (whole, or its .partial zero-padded to the segment size: `padded`), or null when there is none fit to hand over (a whole segment's file of another size is not). */
export async function receivedSegment(repo: Repository, stanza: string, name: string, segmentSize: number, systemId: string | null): Promise<{ data: Buffer; padded: boolean } | null> {
  if (repo.encryption) return null;
  const dir = storageJoin(stanzaPath(stanza), RECEIVER_DIR);
  // In the order a segment moves (.partial, renamed whole, stored and removed): one moving on
  // between two reads is found at its next place (the caller looks in the archive again last).
  const part = await readAll(repo.storage, storageJoin(dir, `${name}.partial`));
  const data = part ?? (await readAll(repo.storage, storageJoin(dir, name)));
  if (data === null || data.length > segmentSize) return null;
  const h = headerOfSegment(name, data);
  if (h === null || h.segmentSize !== segmentSize) return null;
  if (systemId !== null && h.systemIdentifier !== systemId) return null;
  // A .partial is received in part whatever its size: uncompressed, it is made a segment's size
  // (zeros) when it is opened, as pg_receivewal's.
  if (data.length === segmentSize) return { data, padded: part !== null };
  if (part === null) return null;
  const whole = Buffer.alloc(segmentSize);
  data.copy(whole);
  return { data: whole, padded: true };
}
