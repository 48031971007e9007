// check --no-switch of a stanza fed by a WAL receiver (pgpitr receive-wal, archive_mode off): the
// server's archiver reports nothing, and no segment is made to wait for. What the receiver stored
// is judged against where the server writes WAL now: the segment being written, and the one
// before (a receiver stores a segment once it is whole, a moment after), need not be stored yet.

import { parseSegmentFileName } from '../postgres/lsn.js';
import { listArchive } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { Finding } from './check-finding.js';

interface Queries {
  query<T>(text: string): Promise<{ rows: T[] }>;
}

/** What to look at when a receiver's segments do not reach the stanza (or a switch's did not). */
export const RECEIVER_HINT = "look at receive-wal's output (it names what fails: a repository it cannot write, a full disk, a slot gone); the whole segments it could not store yet wait in the repository's <stanza>/receive-wal directory (posix), and are stored in order once it can";

/** The newest segment of the server's timeline in the stanza, with the repositories holding it; null (and a finding) when none, or behind. */
export async function receiverStored(client: Queries, repos: readonly NumberedRepository[], stanza: string, add: (f: Finding) => void): Promise<{ wal: string; repos: Set<number>; switched: false } | null> {
  const r = (
    await client.query<{ writing: string; lsn: string; size: string; flushed: string | null }>(
      "select pg_walfile_name(pg_current_wal_lsn()) as writing, pg_current_wal_lsn()::text as lsn, (select setting from pg_settings where name = 'wal_segment_size') as size, (select max(flush_lsn)::text from pg_stat_replication where application_name = 'pg_receivewal' or (state = 'streaming' and replay_lsn is null)) as flushed",
    )
  ).rows[0]!;
  const size = Number(r.size);
  const writing = parseSegmentFileName(r.writing, size)!;
  const byRepo = new Map<number, Set<string>>();
  for (const { index, repo } of repos) byRepo.set(index, new Set((await listArchive(repo, stanza)).map((f) => f.name).filter((n) => n.slice(0, 8) === r.writing.slice(0, 8) && /^[0-9A-F]{24}$/.test(n))));
  const newest = [...byRepo.values()].flatMap((names) => [...names]).reduce<string | null>((m, n) => (m === null || n > m ? n : m), null);
  const where = `the server writes ${r.writing} (at ${r.lsn})${r.flushed ? `, and the WAL receiver has flushed up to ${r.flushed}` : ''}`;
  if (newest === null || parseSegmentFileName(newest, size)!.segNo + 2n < writing.segNo) {
    add({ check: 'archiving', ok: false, message: `a WAL receiver streams from this server (archive_mode is off): ${where}, but the stanza's newest segment of its timeline is ${newest ?? 'none'}: the receiver is not storing what it receives into this stanza`, hint: RECEIVER_HINT });
    return null;
  }
  add({ check: 'archiving', ok: true, message: `a WAL receiver streams from this server (archive_mode is off): the stanza's newest segment is ${newest}; ${where}` });
  return { wal: newest, repos: new Set([...byRepo].filter(([, names]) => names.has(newest)).map(([i]) => i)), switched: false };
}
