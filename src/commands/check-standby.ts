// check against a standby with archive_mode = on (the usual high-availability set-up: it archives
// once promoted): it archives nothing while it replays, and cannot switch WAL, so archiving is
// judged on its primary. What the stanza holds is judged here: the restores it allows are judged
// up to its newest segment.

import { listArchive } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import type { Finding } from './check-finding.js';

/** The newest segment archived in the stanza (by position, then timeline), and the repositories holding it; null when none. */
export async function newestArchivedSegment(repos: readonly NumberedRepository[], stanza: string, add: (f: Finding) => void): Promise<{ wal: string; repos: Set<number> } | null> {
  const byRepo = new Map<number, Set<string>>();
  let newest: string | null = null;
  const later = (a: string, b: string) => a.slice(8) > b.slice(8) || (a.slice(8) === b.slice(8) && a.slice(0, 8) > b.slice(0, 8));
  for (const { index, repo } of repos) {
    const names = new Set((await listArchive(repo, stanza)).map((f) => f.name).filter((n) => /^[0-9A-F]{24}$/.test(n)));
    byRepo.set(index, names);
    for (const n of names) if (newest === null || later(n, newest)) newest = n;
  }
  if (newest === null) {
    add({ check: 'archiving', ok: false, message: 'the server is a standby, and the stanza holds no WAL segment', hint: 'run pgpitr check against the primary: it switches WAL and waits for it to be archived' });
    return null;
  }
  const wal = newest;
  add({ check: 'archiving', ok: true, message: `the server is a standby: archiving is judged on its primary (pgpitr check there); the stanza's newest WAL segment is ${wal}` });
  return { wal, repos: new Set([...byRepo].filter(([, names]) => names.has(wal)).map(([i]) => i)) };
}
