// Carries out a retention decision (retention.ts) on a stanza: the records of
// expired backups go first (from then on they are not backups), then their
// stored files; then the archived WAL no kept backup needs (a standalone backup
// needs its own range only: retention.ts, the holes that leaves recorded first:
// expired-holes.ts), and the records of WAL dropped there (drops.ts). History
// files are always kept; so is every WAL file when no complete backup exists.

import { storageJoin } from '../storage/storage-path.js';
import { parseSegmentFileName } from '../postgres/lsn.js';
import { parseLsn, segmentNumber } from '../postgres/lsn.js';
import { archivedFilePath, fetchWalFile, listArchive } from './archive-store.js';
import type { ArchivedFile } from './archive-store.js';
import { lastStoredWalFile } from './last-stored.js';
import { branchContains, parseTimelineHistory, timelineBranch } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { Repository } from './repository.js';
import { walFileDirPath } from './layout.js';
import { decideRetention, decideSetExpiry } from './retention.js';
import type { RetentionBackup } from './retention.js';
import { missingObjects } from './backup-set/stored-objects.js';
import { PgpitrError } from '../common/errors.js';
import { BackupSetReader } from './backup-set/reader.js';
import { MANIFEST_NAME, manifestReferences } from './backup-set/manifest.js';
import { dropsBefore } from './drops.js';
import { restorePointEntriesOf } from './restore-point-index.js';
import { holesBetween, recordExpiredHoles } from './expired-holes.js';
import type { RetentionDecision, RetentionPolicy } from './retention.js';
import { liveLeases, removeLeftMarker, whileExpiring } from './restore-lease.js';
import type { LiveLease, RecoveryPending } from './restore-lease.js';
import { backupDir, listRecords, recordProcessAlive, RECORD_NAME, referencesOf } from './backup-set/record.js';
import type { BackupRecord } from './backup-set/record.js';
import { markExpiring, unmarkExpiring, unrecordedSets } from './backup-set/unrecorded.js';
import type { UnrecordedSet } from './backup-set/unrecorded.js';

export interface ExpireResult {
  decision: RetentionDecision;
  walRemoved: { first: string; last: string; count: number } | null;
  /** The WAL kept below the rest for backups kept without the WAL after them (decision.walKeepRanges), by segment name. */
  standaloneWal: { id: string; from: string; to: string }[];
  /** Sets with a manifest and no record (backups that lost it), kept: backup-set/unrecorded.ts. */
  unrecorded: string[];
}

/** What expire removes: the backups a retention policy no longer needs, or one backup set (--set) and what depends on it. */
export type ExpireWhat = { policy: RetentionPolicy } | { set: string };

export async function expireStanza(
  repo: Repository,
  stanza: string,
  segmentSize: number,
  what: ExpireWhat,
  opts: {
    dryRun: boolean;
    nowMs?: number;
    /**
     * The stanza's backup lock is held, on a store that enforces it: no backup runs anywhere, so a
     * record saying "running" is a run that died (on another host, where its process cannot be
     * looked at), and a set without a record is what an interrupted expire left.
     */
    exclusive?: boolean;
    /** Whether a recovery is still to run in a restored data directory of this host (restore leases). */
    recoveryPending?: RecoveryPending;
    /** Told as each backup set is gone (so that an expire killed later has said what it removed). */
    removed?: (id: string, why: string) => void;
  },
): Promise<ExpireResult> {
  // Decided once without the marker: an expire that removes no backup and no WAL (most of those a
  // backup runs) disturbs no restore. One that does writes the marker, then reads the leases and
  // decides again: a restore that takes its lease after that reading finds the marker (restore-lease.ts).
  // What the first plan found of the newest backups' stored files, for the second (one listing each).
  const unrestorable = new Map<string, string | null>();
  const first = await planExpiry(repo, stanza, segmentSize, what, opts, await liveLeases(repo.storage, stanza, { recoveryPending: opts.recoveryPending }), unrestorable);
  if (opts.dryRun) return first.result;
  if (!first.removes) {
    if (opts.exclusive === true) await removeLeftMarker(repo.storage, stanza);
    await first.carry();
    return first.result;
  }
  return whileExpiring(repo.storage, stanza, async (storeNowMs) => {
    const leases = await liveLeases(repo.storage, stanza, { removeStale: opts.exclusive === true, recoveryPending: opts.recoveryPending, storeNowMs });
    const planned = await planExpiry(repo, stanza, segmentSize, what, opts, leases, unrestorable);
    await planned.carry();
    return planned.result;
  });
}

/** What expire would remove (`result`), whether it removes any backup or WAL, and how to carry it out. */
async function planExpiry(repo: Repository, stanza: string, segmentSize: number, what: ExpireWhat, opts: { nowMs?: number; exclusive?: boolean; removed?: (id: string, why: string) => void }, leases: LiveLease[], unrestorable: Map<string, string | null>): Promise<{ result: ExpireResult; removes: boolean; carry: () => Promise<void> }> {
  const storage = repo.storage;
  const records = await listRecords(storage, stanza);
  const loose = await unrecordedSets(storage, stanza, records);
  const archive = await listArchive(repo, stanza);
  // Every policy keeps the newest backup the newest timeline's history can be restored from, and
  // a window the newest before it on that history: both need the history, and nothing is expired
  // without it (taken as "every backup is on it", a count would keep only the newest backup of a
  // branch left behind and remove the one the new timeline needs). The newest timeline is the one
  // WAL was archived on last: a copy promoted elsewhere with this stanza's archive_command makes a
  // higher-numbered one that production does not follow, and would hold every backup since.
  // --set needs it only to refuse removing the newest timeline's last backup: unknown, not refused.
  const branch = await newestBranch(repo, stanza, archive, lastStoredWalFile(archive)?.timeline ?? null, records).catch((e: unknown) => {
    if ('policy' in what) throw e;
    return null;
  });
  const backups = await Promise.all(
    records.map(async (r): Promise<RetentionBackup> => ({
      id: r.id,
      state: r.state === 'complete' ? 'complete' : r.state === 'failed' || opts.exclusive === true || !recordProcessAlive(r) ? 'failed' : 'running',
      stopTimeMs: Date.parse(r.stop_time ?? r.start_time),
      startSegNo: r.start_lsn ? segmentNumber(parseLsn(r.start_lsn), segmentSize) : 0n,
      pinned: r.pinned,
      pinTarget: r.pin_target,
      stopSegNo: r.stop_lsn ? segmentNumber(parseLsn(r.stop_lsn), segmentSize) : undefined,
      damaged: r.damaged,
      onLatestBranch: branch && r.timeline !== null && r.stop_lsn ? branchContains(branch, r.timeline, parseLsn(r.stop_lsn)) : undefined,
      type: r.type,
      // A complete backup needs only the backups it takes files from (its prior may have given it none);
      // one not complete yet may still take any from its prior.
      needs: r.damaged ? await damagedNeeds(repo, stanza, r, records) : [...referencesOf(r), ...(r.prior && r.state !== 'complete' ? [r.prior] : [])],
      restoring: leases.find((l) => l.backup === r.id)?.holder,
    })),
  );
  // A policy does not count on a newest backup whose stored files are gone (a lifecycle rule, a
  // removal by hand): the newest complete backups are looked at, newest first, until one can be
  // restored (one listing each; usually the first), and those that cannot are marked so.
  if ('policy' in what) await markUnrestorable(storage, stanza, backups, unrestorable);
  // --set naming a set without a record: removed when asked, unless a backup takes files from it.
  const looseAsked = 'set' in what && !records.some((r) => r.id === what.set) ? loose.find((l) => l.id === what.set) : undefined;
  if (looseAsked) {
    const takers = records.filter((r) => referencesOf(r).includes(looseAsked.id) || r.prior === looseAsked.id).map((r) => r.id);
    if (takers.length > 0) {
      throw new PgpitrError('ERR_TARGET', `backup set ${looseAsked.id} has no record, and backup ${takers.join(', ')} takes files from it`, {
        hint: `copy its ${RECORD_NAME} back from a copy of the repository (the backups that need it are restorable again), or expire them first (pgpitr expire --set=${takers[0]})`,
      });
    }
    backups.push({ id: looseAsked.id, state: 'failed', stopTimeMs: 0, startSegNo: 0n, pinned: false, needs: [] });
  }
  const decision = 'policy' in what ? decideRetention(backups, what.policy, opts.nowMs ?? Date.now()) : decideSetExpiry(backups, what.set, stanza, opts.nowMs ?? Date.now());
  let walRemoved: ExpireResult['walRemoved'] = null;
  const keepFrom = decision.walKeepFromSegNo;
  const ranges = decision.walKeepRanges;
  const doomed = keepFrom === null ? [] : archive.filter((f) => {
    if (f.name.endsWith('.history')) return false;
    const seg = parseSegmentFileName(f.name.slice(0, 24), segmentSize);
    return seg !== null && seg.segNo < keepFrom && !ranges.some((r) => seg.segNo >= r.fromSegNo && seg.segNo <= r.toSegNo);
  });
  if (doomed.length > 0) walRemoved = { first: doomed[0]!.name, last: doomed[doomed.length - 1]!.name, count: doomed.length };
  const standaloneWal = ranges.map((k) => {
    const r = records.find((x) => x.id === k.id);
    return { id: k.id, from: r?.start_wal ?? '?', to: r?.stop_wal ?? '?' };
  });
  return {
    result: { decision, walRemoved, standaloneWal, unrecorded: loose.filter((l) => !l.leftover && l !== looseAsked).map((l) => l.id) },
    removes: decision.expire.length > 0 || doomed.length > 0,
    carry: () => carryOut(repo, stanza, segmentSize, what, opts, records, loose, archive, decision, doomed),
  };
}

/** Removes what the decision expires: backups, then WAL and what records it. */
async function carryOut(
  repo: Repository,
  stanza: string,
  segmentSize: number,
  what: ExpireWhat,
  opts: { exclusive?: boolean; removed?: (id: string, why: string) => void },
  records: BackupRecord[],
  loose: UnrecordedSet[],
  archive: ArchivedFile[],
  decision: RetentionDecision,
  doomed: ArchivedFile[],
): Promise<void> {
  const storage = repo.storage;
  const keepFrom = decision.walKeepFromSegNo;
  const ranges = decision.walKeepRanges;
  for (const id of removalOrder(decision.expire.map((e) => e.id), records)) {
    // Marked, then the record, durably: from then on the set is not a backup, whatever remains
    // of it, and the mark tells the next expire that it is what this one left (unrecorded.ts).
    const recorded = records.some((r) => r.id === id);
    if (recorded) await markExpiring(storage, stanza, id);
    try {
      await storage.remove(storageJoin(backupDir(stanza, id), RECORD_NAME));
      await storage.pathSync?.(backupDir(stanza, id));
    } catch (e) {
      // The record stays: so must the set, unmarked (marked, it would be taken for a leftover should it lose its record later).
      if (recorded) await unmarkExpiring(storage, stanza, id).catch(() => {});
      throw e;
    }
    // The manifest before the rest (the mark among it): a set left with a manifest still has its mark.
    await storage.remove(storageJoin(backupDir(stanza, id), MANIFEST_NAME));
    await storage.pathSync?.(backupDir(stanza, id));
    await storage.remove(backupDir(stanza, id), { recursive: true });
    opts.removed?.(id, decision.expire.find((e) => e.id === id)?.why ?? '');
  }
  // Sets an interrupted expire left (marked, or without a manifest: unrecorded.ts) are removed
  // too, when the backup lock is enforced (no backup is being written). Not one a kept backup
  // takes files from, nor one with a manifest and no mark: that set lost its record some other
  // way (a lifecycle rule, a hand), and copying the record back saves it; the result names it.
  if (opts.exclusive === true) {
    const expired = new Set(decision.expire.map((e) => e.id));
    // As planExpiry counts them: a complete backup needs what it takes files from, one not complete its prior too.
    const needed = new Set(records.filter((r) => !expired.has(r.id)).flatMap((r) => [...referencesOf(r), ...(r.prior && r.state !== 'complete' ? [r.prior] : [])]));
    for (const l of loose) {
      if (l.leftover && !expired.has(l.id) && !needed.has(l.id)) await storage.remove(backupDir(stanza, l.id), { recursive: true });
    }
  }
  // The holes left between standalone backups' WAL are recorded first: info and check then know
  // them from gaps archiving left (and those before the first segment kept are forgotten).
  // Only a policy's expire: --set leaves every backup the WAL after it, and the holes as they are.
  if (keepFrom !== null && 'policy' in what) {
    const firstKept = ranges.reduce((m, r) => (r.fromSegNo < m ? r.fromSegNo : m), keepFrom);
    // The holes cover the timelines archived now: a later one has gaps of its own there.
    const timeline = archive.reduce((m, f) => Math.max(m, parseInt(f.name.slice(0, 8), 16) || 0), 1);
    await recordExpiredHoles(repo, stanza, holesBetween(ranges, keepFrom), ranges, keepFrom, firstKept, timeline);
  }
  // As few requests as the store allows (object storage: DeleteObjects, a thousand keys each).
  await storage.removeMany(doomed.map((f) => archivedFilePath(stanza, f)));
  // Directories of segments (one per 256 segments) that this left empty go too: a long-lived
  // stanza would otherwise keep one for every 4 GB of WAL it ever archived.
  if (storage.pruneDirectory) {
    for (const dir of new Set(doomed.map((f) => walFileDirPath(stanza, f.name)))) await storage.pruneDirectory(dir);
  }
  // The restore point index's records of the segments removed (also by an earlier expire killed
  // before this step: restore-point-index.ts), and their emptied directories.
  if (keepFrom !== null) {
    const removed = new Set(doomed.map((f) => f.name));
    const remaining = new Set(archive.filter((f) => !removed.has(f.name)).map((f) => f.name));
    const indexed = await restorePointEntriesOf(repo, stanza, (segment) => {
      const seg = parseSegmentFileName(segment, segmentSize);
      return seg !== null && seg.segNo < keepFrom && !remaining.has(segment) && !ranges.some((r) => seg.segNo >= r.fromSegNo && seg.segNo <= r.toSegNo);
    });
    await storage.removeMany(indexed.paths);
    if (storage.pruneDirectory) for (const dir of indexed.dirs) await storage.pruneDirectory(dir);
  }
  // What asynchronous archive-push recorded dropping there: that WAL is no longer wanted either.
  if (keepFrom !== null) await storage.removeMany(await dropsBefore(repo, stanza, keepFrom, segmentSize, ranges));
}


/**
 * The expired backups in an order where each goes before every backup it takes files from (its
 * references and prior), whatever order the decision lists them in and whatever their ids say (a
 * clock set back): an interrupted expire never leaves a record naming a set already removed.
 */
function removalOrder(ids: string[], records: BackupRecord[]): string[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const pending = [...ids];
  const out: string[] = [];
  while (pending.length > 0) {
    const needed = new Set(pending.flatMap((id) => {
      const r = byId.get(id);
      return r ? [...referencesOf(r), ...(r.prior ? [r.prior] : [])] : [];
    }));
    const free = pending.findIndex((id) => !needed.has(id));
    out.push(pending.splice(free === -1 ? 0 : free, 1)[0]!); // -1: a cycle, which records cannot form
  }
  return out;
}

/**
 * The branch of `timeline` from its history file (timeline 1: itself); null with nothing archived.
 * A history file missing or unreadable fails the expire: without it the policy would keep the
 * newest backups of the wrong branch, and remove the one restore needs. Missing where the stanza
 * knows no other timeline (archiving began after the last promotion: PostgreSQL archives a
 * history file once, when it makes it), there is no other branch to tell apart.
 */
async function newestBranch(repo: Repository, stanza: string, archive: ArchivedFile[], timeline: number | null, records: BackupRecord[]): Promise<TimelineBranch | null> {
  if (timeline === null) return null;
  // Timeline 1 has no history: its branch is itself, and a backup of a later timeline (a copy
  // promoted elsewhere that took a backup into this stanza) is not on it.
  if (timeline === 1) return timelineBranch(1, []);
  const newest = archive.map((f) => f.name).find((n) => /^[0-9A-F]{8}\.history$/.test(n) && parseInt(n.slice(0, 8), 16) === timeline);
  const alone = archive.every((f) => !/^[0-9A-F]{8}/.test(f.name) || parseInt(f.name.slice(0, 8), 16) === timeline) && records.every((r) => r.timeline === null || r.timeline === timeline);
  if (newest === undefined && alone) return timelineBranch(timeline, []);
  if (newest === undefined) {
    const name = `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
    throw new PgpitrError('ERR_CHECK', `history file ${name} of stanza ${stanza} is not in the archive, though WAL of timeline ${timeline} is: which backups that timeline can be restored from cannot be known, so nothing is expired`, {
      hint: `archive it from the pg_wal of the server on timeline ${timeline} (pgpitr archive-push pg_wal/${name}); if it is still being archived, run expire again in a moment`,
    });
  }
  let data: Buffer | null;
  try {
    data = await fetchWalFile(repo, stanza, newest);
  } catch (e) {
    throw new PgpitrError('ERR_CHECK', `history file ${newest} of stanza ${stanza} cannot be read: ${(e as Error).message}`, {
      hint: 'retention follows the newest timeline\'s history, so nothing is expired without it; pgpitr verify checks the archive (put the file back from the cluster\'s pg_wal with pgpitr archive-push), or remove chosen backups with pgpitr expire --set',
      cause: e,
    });
  }
  if (data === null) {
    throw new PgpitrError('ERR_CHECK', `history file ${newest} of stanza ${stanza} was listed but is gone`, { hint: 'run expire again; if it goes on, pgpitr verify checks the archive' });
  }
  return timelineBranch(parseInt(newest.slice(0, 8), 16), parseTimelineHistory(data.toString('utf8'), newest));
}

/**
 * What a backup whose record cannot be parsed takes files from: a full backup, nothing; a diff or
 * incr (as its id says), what its set's manifest names, or, when that cannot be read either,
 * every backup older than it (it may need any of them: kept until the record is looked at).
 */
async function damagedNeeds(repo: Repository, stanza: string, r: BackupRecord, records: BackupRecord[]): Promise<string[]> {
  if (r.type === 'full') return [];
  try {
    return manifestReferences((await BackupSetReader.open(repo.storage, backupDir(stanza, r.id))).manifest);
  } catch {
    return records.filter((o) => o.id < r.id).map((o) => o.id);
  }
}

/** Marks the newest complete backups that cannot be restored, newest first, up to the first that can (retention.ts keeps it). */
async function markUnrestorable(storage: Repository['storage'], stanza: string, backups: RetentionBackup[], known: Map<string, string | null>): Promise<void> {
  const candidates = backups.filter((b) => b.state === 'complete' && !b.damaged && b.onLatestBranch !== false).sort((a, b) => b.stopTimeMs - a.stopTimeMs);
  for (const b of candidates) {
    const missing = known.has(b.id) ? known.get(b.id)! : await missingObjects(storage, stanza, b.id);
    known.set(b.id, missing);
    if (missing === null) return;
    b.unrestorable = missing;
  }
}
