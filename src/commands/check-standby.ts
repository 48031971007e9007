// check against a standby with archive_mode = on (the usual high-availability set-up: it archives
// once promoted): it archives nothing while it replays, and cannot switch WAL. What it replayed
// must be archived by its primary, give or take the segment being filled: the stanza's newest
// segment is judged against the standby's replay position, and the restores the stanza allows
// up to that segment.

import { parseLsn } from '../postgres/lsn.js';
import { listArchive } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { Finding } from './check-finding.js';

interface Queries {
  query<T>(text: string): Promise<{ rows: T[] }>;
}

/** The newest segment archived in the stanza (by position, then timeline), and the repositories holding it; null when none, or behind the standby's replay. */
export async function standbyArchived(client: Queries, repos: readonly NumberedRepository[], stanza: string, add: (f: Finding) => void): Promise<{ wal: string; repos: Set<number> } | null> {
  const r = (await client.query<{ lsn: string | null; size: string; tli: number | null }>("select pg_last_wal_replay_lsn()::text as lsn, (select setting from pg_settings where name = 'wal_segment_size') as size, (select timeline_id from pg_control_checkpoint()) as tli")).rows[0]!;
  const byRepo = new Map<number, Set<string>>();
  let newest: string | null = null;
  const later = (a: string, b: string) => a.slice(8) > b.slice(8) || (a.slice(8) === b.slice(8) && a.slice(0, 8) > b.slice(0, 8));
  // The standby's own timeline's (an abandoned future or a copy's timeline says nothing of its primary); any when it has none yet.
  const own = r.tli === null ? null : r.tli.toString(16).toUpperCase().padStart(8, '0');
  for (const { index, repo } of repos) {
    const names = new Set((await listArchive(repo, stanza)).map((f) => f.name).filter((n) => /^[0-9A-F]{24}$/.test(n)));
    byRepo.set(index, names);
  }
  const all = [...byRepo.values()].flatMap((names) => [...names]);
  for (const n of all.some((x) => x.slice(0, 8) === own) ? all.filter((x) => x.slice(0, 8) === own) : all) if (newest === null || later(n, newest)) newest = n;
  const hint = 'the primary archives what the standby replays: run pgpitr check against the primary (it switches WAL and waits for it to be archived)';
  if (newest === null) {
    add({ check: 'archiving', ok: false, message: 'the server is a standby, and the stanza holds no WAL segment', hint });
    return null;
  }
  const size = BigInt(r.size);
  const perId = 0x100000000n / size;
  const newestSeg = BigInt(`0x${newest.slice(8, 16)}`) * perId + BigInt(`0x${newest.slice(16, 24)}`);
  const replayedSeg = r.lsn === null ? null : parseLsn(r.lsn) / size;
  // The segment replay is in, and the one before (its archiving may be a moment behind), need not be there yet.
  if (replayedSeg !== null && newestSeg + 2n < replayedSeg) {
    add({ check: 'archiving', ok: false, message: `the server is a standby that replayed up to ${r.lsn}, and the stanza's newest WAL segment is ${newest}: its primary's archiving is behind or failing`, hint });
    return null;
  }
  const wal = newest;
  add({ check: 'archiving', ok: true, message: `the server is a standby: the stanza's newest WAL segment is ${wal}${r.lsn === null ? '' : `, where it replayed up to ${r.lsn}`}; archiving itself is judged on its primary (pgpitr check there)` });
  return { wal, repos: new Set([...byRepo].filter(([, names]) => names.has(wal)).map(([i]) => i)) };
}
