// What a background pusher sets right when it starts (pusher.ts runPusher),
// before it stores anything: the markers of repositories that changed or of
// files rewritten since (a data directory rolled back) are forgotten, and the
// drop records and owed copies kept in the spool go where the repositories
// now are.

import { join } from 'node:path';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { listReadyWalFiles } from '../wal/archive-status.js';
import type { PushSpool } from './spool.js';
import type { RepoQueue } from './repo-queue.js';

/** What these steps read of the pusher's settings. */
export interface PusherStart {
  repos: NumberedRepository[];
  pgWal: string;
  spool: PushSpool;
  log: (line: string) => void;
}

/**
 * Drop records and owed copies (.history and .backup files it could not store past the queue
 * limit) a pusher with one repository left in the spool (not yet taken by it), now that there are
 * several: kept for each repository, which all lacked those files then. Each is saved (synced)
 * everywhere before it is forgotten here: a crash between the two stores a file twice, never none.
 */
export function adoptSharedPendingDrops(spool: PushSpool, queues: RepoQueue[]): void {
  for (const { id, record } of spool.pendingDrops()) {
    for (const q of queues) q.spool.savePendingDrop(id, record as object);
    spool.forgetPendingDrop(id);
  }
  for (const [name, path] of spool.owed()) {
    for (const q of queues) q.spool.saveOwed(name, path);
    spool.forgetOwed(name);
  }
}

/** Copies the drop records and owed copies of one repository's spool to another (each saved, synced); what was copied. */
function copyRepositoryRecords(from: PushSpool, to: PushSpool): { drops: string[]; owed: string[] } {
  const drops = from.pendingDrops();
  const owed = from.owed();
  for (const { id, record } of drops) to.savePendingDrop(id, record as object);
  for (const [name, path] of owed) to.saveOwed(name, path);
  return { drops: drops.map((d) => d.id), owed: [...owed.keys()] };
}

/** Moves them: all saved, synced, before any is forgotten (a crash in between leaves them twice, never nowhere). */
function moveRepositoryRecords(from: PushSpool, to: PushSpool): void {
  const copied = copyRepositoryRecords(from, to);
  for (const id of copied.drops) from.forgetPendingDrop(id);
  for (const name of copied.owed) from.forgetOwed(name);
}

/** The number and location of an entry of the recorded list ("repoN LOCATION"). */
function locationOf(entry: string): { index: number; location: string } | null {
  const m = /^repo(\d+) ([^]*)$/.exec(entry);
  return m === null ? null : { index: Number(m[1]), location: m[2]! };
}

/**
 * What a repository's own spool kept (drop records, copies of .history and .backup files it is
 * owed) belongs to its location, not to its number. When the repositories changed, the records of
 * each repository of the recorded list whose location no longer keeps them in that spool
 * (renumbered, taken out, or now alone) are parked under its location, their removal from that
 * spool synced before the new list is recorded; a crash in between parks them again from the same
 * spools (a temporary file a write killed half-way leaves in parked/ goes with it once delivered).
 */
function parkMovedRecords(s: PusherStart, queues: RepoQueue[], recorded: string[]): void {
  if (recorded.length === 1) {
    // One repository: its records are the stanza's spool's, and the repositories configured now
    // get them (adoptSharedPendingDrops among several: they lacked those files too; alone, the
    // repository may be the same one moved). Taken out, a copy also waits for it.
    const was = locationOf(recorded[0]!);
    if (was === null || s.repos.some((r) => r.repo.location === was.location)) return;
    if (s.spool.pendingDrops().length === 0 && s.spool.owed().size === 0) return;
    const parked = s.spool.parkedFor(was.location);
    copyRepositoryRecords(s.spool, parked);
    s.log(`kept a copy of what ${recorded[0]} was owed (drop records, copies of .history and .backup files) in ${parked.dir}: it is no longer configured; it gets them when it is again`);
    return;
  }
  for (const entry of recorded) {
    const was = locationOf(entry);
    if (was === null) continue;
    const from = s.spool.forRepository(was.index);
    const now = s.repos.findIndex((r) => r.repo.location === was.location);
    if (now >= 0 && queues[now]!.spool.dir === from.dir) continue;
    if (from.pendingDrops().length === 0 && from.owed().size === 0) continue;
    const parked = s.spool.parkedFor(was.location);
    moveRepositoryRecords(from, parked);
    // Gone from here for good before the new list is recorded: a removal undone by a crash would
    // otherwise be taken for the records of the repository that has this number now.
    from.syncRecords();
    s.log(
      now >= 0
        ? `moved what ${entry} was owed (drop records, copies of .history and .backup files) to where the pusher keeps it now`
        : `kept what ${entry} was owed (drop records, copies of .history and .backup files) aside in ${parked.dir}: it is no longer configured; it gets them when it is again`,
    );
  }
}

/** Parked records go to the repository of their location whenever it is configured (every start). */
export function deliverParkedRecords(s: PusherStart, queues: RepoQueue[]): void {
  for (const { location, spool } of s.spool.parked()) {
    const i = s.repos.findIndex((r) => r.repo.location === location);
    if (i < 0) continue;
    moveRepositoryRecords(spool, queues[i]!.spool);
    s.spool.removeParked(spool);
  }
}

/**
 * Markers say a file is stored (or dropped) in the repository the pusher that wrote them had under
 * that number: those of a repository whose location changed (or that is new) are forgotten, so
 * that what is still ready goes to it; the others' stand (forgetting them would count a repository
 * that keeps up as lacking the backlog, and past the queue limit make it drop what it holds). The
 * server's markers (one repository: repo1's own) are forgotten with any change; going from one
 * repository to several, repo1's become its own markers first.
 */
export function forgetMarkersOfOtherRepositories(s: PusherStart, queues: RepoQueue[]): void {
  const mine = s.repos.map((r) => `repo${r.index} ${r.repo.location}`);
  const recorded = s.spool.recordedRepositories();
  const same = JSON.stringify(recorded) === JSON.stringify(mine);
  if (recorded !== null && !same) {
    const multi = mine.length > 1;
    if (multi && recorded.length === 1 && recorded[0] === mine[0]) {
      for (const [name, kind] of s.spool.list()) queues[0]!.spool.write(name, kind, s.spool.read(name)?.message ?? '');
    }
    if (multi) {
      for (const [i, entry] of mine.entries()) {
        if (!recorded.includes(entry)) queues[i]!.spool.forgetMarkers();
      }
    }
    parkMovedRecords(s, queues, recorded);
    s.spool.forgetMarkers(false);
    s.log(`the repositories changed (${recorded.join(', ')} before, ${mine.join(', ')} now): what is still ready and not in a repository as it is now is stored there`);
  }
  if (!same) s.spool.recordRepositories(mine);
  deliverParkedRecords(s, queues);
}

/** Markers older than their ready WAL file were about an earlier file of that name (a data directory rolled back). */
export function forgetOutdatedMarkers(s: PusherStart, queues: RepoQueue[], multi: boolean): void {
  const spools = multi ? [s.spool, ...queues.map((q) => q.spool)] : [s.spool];
  for (const name of listReadyWalFiles(s.pgWal)) {
    for (const spool of spools) {
      if (spool.read(name) !== null && spool.read(name, join(s.pgWal, name)) === null) {
        s.log(`forgot the marker of ${name} in ${spool.dir}: it is older than the file`);
      }
    }
  }
}
