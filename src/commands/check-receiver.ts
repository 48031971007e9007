// check --no-switch of a stanza fed by a WAL receiver (pgpitr receive-wal, archive_mode off): the
// server's archiver reports nothing, and no segment is made to wait for. What each repository's
// receiver stored is judged against where the server writes WAL now: the segment being written,
// and the one before (a receiver stores a segment once it is whole, a moment after), need not be
// stored yet.

import { parseSegmentFileName } from '../postgres/lsn.js';
import { listArchive } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { Finding } from './check-finding.js';
import { newestSegment } from './check-standby.js';

interface Queries {
  query<T>(text: string): Promise<{ rows: T[] }>;
}

/** The walsenders of WAL receivers in pg_stat_replication: named pg_receivewal, or reporting no replay (a standby reports one). */
export const RECEIVER_WALSENDERS = "application_name = 'pg_receivewal' or (state = 'streaming' and replay_lsn is null)";

/** What to look at when a receiver's segments do not reach the stanza (or a switch's did not). */
export const RECEIVER_HINT = "look at receive-wal's output (it names what fails: a repository it cannot write, a full disk, a slot gone); the whole segments it could not store yet wait in the repository's <stanza>/receive-wal directory (posix), and are stored in order once it can";

/**
 * Each repository's newest segment (of the server's timeline; of any, while that one has none
 * stored yet: a promotion a moment ago), judged against the segment the server writes: a finding
 * per repository. The segment every repository that passed holds, with them; null when none passed.
 */
export async function receiverStored(client: Queries, repos: readonly NumberedRepository[], stanza: string, add: (f: Finding) => void): Promise<{ wal: string; repos: Set<number>; switched: false } | null> {
  const r = (
    await client.query<{ writing: string; lsn: string; size: string; flushed: string | null }>(
      `select pg_walfile_name(pg_current_wal_lsn()) as writing, pg_current_wal_lsn()::text as lsn, (select setting from pg_settings where name = 'wal_segment_size') as size, (select max(flush_lsn)::text from pg_stat_replication where ${RECEIVER_WALSENDERS}) as flushed`,
    )
  ).rows[0]!;
  const size = Number(r.size);
  const writing = parseSegmentFileName(r.writing, size)!;
  const where = `the server writes ${r.writing} (at ${r.lsn})${r.flushed ? `, and the WAL receiver has flushed up to ${r.flushed}` : ''}`;
  const passed = new Map<number, { name: string; segNo: bigint }>();
  for (const { index, repo } of repos) {
    const segments = (await listArchive(repo, stanza)).flatMap((f) => {
      const seg = /^[0-9A-F]{24}$/.test(f.name) ? parseSegmentFileName(f.name, size) : null;
      return seg === null ? [] : [{ name: f.name, ...seg }];
    });
    const newest = newestSegment(segments, writing.timeline);
    // The segment being written and the one before it (stored a moment after it is whole) need not be there yet.
    if (newest === null || newest.segNo + 2n < writing.segNo) {
      add({ check: 'archiving', repo: index, ok: false, message: `a WAL receiver streams from this server (archive_mode is off): ${where}, but the stanza's newest segment is ${newest?.name ?? 'none'}: no receiver stores what it receives into this repository`, hint: RECEIVER_HINT });
      continue;
    }
    passed.set(index, newest);
    add({ check: 'archiving', repo: index, ok: true, message: `a WAL receiver streams from this server (archive_mode is off): the stanza's newest segment is ${newest.name}; ${where}` });
  }
  if (passed.size === 0) return null;
  // Judged up to the oldest of those newest segments: every repository that passed holds WAL to there.
  const wal = [...passed.values()].reduce((m, x) => (x.segNo < m.segNo ? x : m)).name;
  return { wal, repos: new Set(passed.keys()), switched: false };
}

/**
 * With archive_mode off and no receiver streaming: the physical slots no one streams from (a
 * stopped receive-wal's, whose stanza then gets nothing), said beside the archive_mode finding.
 */
export async function idleSlotsNote(client: Queries): Promise<string> {
  const idle = (await client.query<{ slot_name: string }>("select slot_name from pg_replication_slots where slot_type = 'physical' and not active order by 1")).rows.map((r) => `"${r.slot_name}"`);
  return idle.length === 0 ? ', and no WAL receiver streams from it' : `, and no WAL receiver streams from it (physical slot${idle.length > 1 ? 's' : ''} ${idle.join(', ')} inactive: a receive-wal that fed the stanza through ${idle.length > 1 ? 'one' : 'it'} is not running?)`;
}
