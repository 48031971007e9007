// Carries out a retention decision (retention.ts) on a stanza: the records of
// expired backups go first (from then on they are not backups), then their
// stored files; then the archived WAL no kept backup needs, and the records of
// WAL dropped there (drops.ts). History files are always kept; so is every WAL
// file when no complete backup exists.

import { storageJoin } from '../storage/storage-path.js';
import { parseSegmentFileName } from '../postgres/lsn.js';
import { parseLsn, segmentNumber } from '../postgres/lsn.js';
import { archivedFilePath, fetchWalFile, listArchive } from './archive-store.js';
import type { ArchivedFile } from './archive-store.js';
import { branchContains, parseTimelineHistory, timelineBranch } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { Repository } from './repository.js';
import { decideRetention } from './retention.js';
import { dropsBefore } from './drops.js';
import type { RetentionDecision, RetentionPolicy } from './retention.js';
import { BACKUP_ID, backupDir, listRecords, recordProcessAlive, RECORD_NAME, referencesOf } from './backup-set/record.js';
import type { BackupRecord } from './backup-set/record.js';

export interface ExpireResult {
  decision: RetentionDecision;
  walRemoved: { first: string; last: string; count: number } | null;
}

export async function expireStanza(
  repo: Repository,
  stanza: string,
  segmentSize: number,
  policy: RetentionPolicy,
  opts: { dryRun: boolean; nowMs?: number; warn?: (message: string) => void },
): Promise<ExpireResult> {
  const storage = repo.storage;
  const records = await listRecords(storage, stanza);
  const archive = await listArchive(repo, stanza);
  const branch = await newestBranch(repo, stanza, archive, opts.warn ?? (() => {}));
  const decision = decideRetention(
    records.map((r) => ({
      id: r.id,
      state: r.state === 'complete' ? 'complete' : r.state === 'failed' || !recordProcessAlive(r) ? 'failed' : 'running',
      stopTimeMs: Date.parse(r.stop_time ?? r.start_time),
      startSegNo: r.start_lsn ? segmentNumber(parseLsn(r.start_lsn), segmentSize) : 0n,
      pinned: r.pinned,
      damaged: r.damaged,
      onLatestBranch: branch && r.timeline !== null && r.stop_lsn ? branchContains(branch, r.timeline, parseLsn(r.stop_lsn)) : undefined,
      type: r.type,
      needs: [...referencesOf(r), ...(r.prior ? [r.prior] : [])],
    })),
    policy,
    opts.nowMs ?? Date.now(),
  );
  let walRemoved: ExpireResult['walRemoved'] = null;
  const keepFrom = decision.walKeepFromSegNo;
  const doomed = keepFrom === null ? [] : archive.filter((f) => {
    if (f.name.endsWith('.history')) return false;
    const seg = parseSegmentFileName(f.name.slice(0, 24), segmentSize);
    return seg !== null && seg.segNo < keepFrom;
  });
  if (doomed.length > 0) walRemoved = { first: doomed[0]!.name, last: doomed[doomed.length - 1]!.name, count: doomed.length };
  if (opts.dryRun) return { decision, walRemoved };
  for (const id of removalOrder(decision.expire.map((e) => e.id), records)) {
    // The record first, durably: from then on the set is not a backup, whatever remains of it.
    await storage.remove(storageJoin(backupDir(stanza, id), RECORD_NAME));
    await storage.pathSync?.(backupDir(stanza, id));
    await storage.remove(backupDir(stanza, id), { recursive: true });
  }
  // Sets without a record (an expire interrupted after the record went) are removed too; the
  // caller holds the backup lock, so no backup is being written.
  const listed = new Set(records.map((r) => r.id));
  for (const entry of await storage.list(storageJoin(stanza, 'backup'))) {
    if (entry.type === 'directory' && BACKUP_ID.test(entry.name) && !listed.has(entry.name)) await storage.remove(storageJoin(stanza, 'backup', entry.name), { recursive: true });
  }
  // As few requests as the store allows (object storage: DeleteObjects, a thousand keys each).
  await storage.removeMany(doomed.map((f) => archivedFilePath(stanza, f)));
  // What asynchronous archive-push recorded dropping there: that WAL is no longer wanted either.
  if (keepFrom !== null) await storage.removeMany(await dropsBefore(repo, stanza, keepFrom, segmentSize));
  return { decision, walRemoved };
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

/** The branch of the archive's newest timeline, from its history file; null on timeline 1 (or without one). */
async function newestBranch(repo: Repository, stanza: string, archive: ArchivedFile[], warn: (m: string) => void): Promise<TimelineBranch | null> {
  const histories = archive.filter((f) => /^[0-9A-F]{8}\.history$/.test(f.name)).map((f) => f.name).sort();
  const newest = histories[histories.length - 1];
  if (newest === undefined) return null;
  try {
    const data = await fetchWalFile(repo, stanza, newest);
    if (data === null) return null;
    return timelineBranch(parseInt(newest.slice(0, 8), 16), parseTimelineHistory(data.toString('utf8'), newest));
  } catch (e) {
    // Only a refinement of the window (it keeps more): without it, retention goes on as before.
    warn(`${newest} cannot be read (${(e as Error).message}): the retention window does not follow the newest timeline's history`);
    return null;
  }
}
