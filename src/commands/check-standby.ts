// check against a standby with archive_mode = on (the usual high-availability set-up: it archives
// once promoted): it archives nothing while it replays, and cannot switch WAL. What it replayed
// must be archived by its primary, give or take the segment being filled: the stanza's newest
// segment is judged against the standby's replay position, and the restores the stanza allows
// up to that segment.

import { parseLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { listArchive } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { Finding } from './check-finding.js';

interface Queries {
  query<T>(text: string): Promise<{ rows: T[] }>;
}

/** The newest segment archived in the stanza (by position, then timeline), and the repositories holding it; null when none, or behind the standby's replay. */
export async function standbyArchived(client: Queries, repos: readonly NumberedRepository[], stanza: string, add: (f: Finding) => void): Promise<{ wal: string; repos: Set<number>; switched: false } | null> {
  const r = (await client.query<{ lsn: string | null; size: string; tli: number | null }>("select pg_last_wal_replay_lsn()::text as lsn, (select setting from pg_settings where name = 'wal_segment_size') as size, coalesce((select received_tli from pg_stat_wal_receiver), (select timeline_id from pg_control_checkpoint())) as tli")).rows[0]!;
  const size = Number(r.size);
  const byRepo = new Map<number, Set<string>>();
  for (const { index, repo } of repos) byRepo.set(index, new Set((await listArchive(repo, stanza)).map((f) => f.name).filter((n) => /^[0-9A-F]{24}$/.test(n))));
  const segments = [...byRepo.values()].flatMap((names) => [...names].flatMap((name) => {
    const seg = parseSegmentFileName(name, size);
    return seg === null ? [] : [{ name, ...seg }];
  }));
  // The standby's own timeline's (an abandoned future or a copy's timeline says nothing of its primary); any when it has none yet.
  // Its timeline: the one its WAL receiver streams, else its last restartpoint's (behind, after it
  // followed a promotion through the archive, until its next restartpoint).
  const newest = newestSegment(segments, r.tli);
  const hint = 'the primary archives what the standby replays: run pgpitr check against the primary (it switches WAL and waits for it to be archived)';
  if (newest === null) {
    add({ check: 'archiving', ok: false, message: 'the server is a standby, and the stanza holds no WAL segment', hint });
    return null;
  }
  // The segment replay is in, and the one before (its archiving may be a moment behind), need not be there yet.
  if (r.lsn !== null && newest.segNo + 2n < parseLsn(r.lsn) / BigInt(size)) {
    add({ check: 'archiving', ok: false, message: `the server is a standby that replayed up to ${r.lsn}, and the stanza's newest WAL segment is ${newest.name}: its primary's archiving is behind or failing`, hint });
    return null;
  }
  const wal = newest.name;
  add({ check: 'archiving', ok: true, message: `the server is a standby: the stanza's newest WAL segment is ${wal}${r.lsn === null ? '' : `, where it replayed up to ${r.lsn}`}; archiving itself is judged on its primary (pgpitr check there)` });
  return { wal, repos: new Set([...byRepo].filter(([, names]) => names.has(wal)).map(([i]) => i)), switched: false };
}

/** The newest segment (by position, then timeline) of `timeline`, or of any while that one has none; null when there are none. */
export function newestSegment<S extends { segNo: bigint; timeline: number }>(segments: readonly S[], timeline: number | null): S | null {
  const own = segments.filter((x) => x.timeline === timeline);
  return (own.length > 0 ? own : segments).reduce<S | null>((a, x) => (a === null || x.segNo > a.segNo || (x.segNo === a.segNo && x.timeline > a.timeline) ? x : a), null);
}
