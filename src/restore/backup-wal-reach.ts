// What the archive must hold for a backup to become consistent, as restore
// reads it with its defaults (pure): the segments from the backup's start to
// the one holding its stop LSN, each on the timeline replay reads it from. That
// is the latest timeline's branch when the backup is on it (where a newer
// timeline began in a segment, replay reads the newer timeline's copy: a
// standby's backup whose stop segment also holds a later promotion needs the
// new timeline's file, not the old one's .partial), else the backup's own
// timeline (restore then needs --target-timeline current). The same rules as
// restore's plan (plan.ts); used by verify. And what the archive's history files
// lack: restore refuses to follow a timeline whose history it cannot read.

import { isPgpitrError } from '../common/errors.js';
import { segmentFileName, timelineHistoryFileName } from '../postgres/lsn.js';
import { branchContains, segmentsAlong, timelineBranch } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import { resolveBranch } from './plan.js';
import type { PlanArchive, PlanBackup } from './plan.js';

/** The segment files (names) replay reads from the archive to make backup b consistent. */
export function backupWalNeeds(b: PlanBackup, archive: PlanArchive): string[] {
  const branch = defaultBranch(b, archive);
  const seg = BigInt(archive.segmentSize);
  // Up to the byte before the stop (without a target, a stop on a boundary needs nothing of the
  // segment starting there: plan.ts); a set holding its WAL needs none of it from the archive.
  const to = b.stopLsn - 1n;
  const from = b.walIncluded ? (to / seg + 1n) * seg : b.startLsn;
  if (from > to) return [];
  return segmentsAlong(branch, from, to, archive.segmentSize).map((s) => segmentFileName(s.timeline, s.segNo, archive.segmentSize));
}

function defaultBranch(b: PlanBackup, archive: PlanArchive): TimelineBranch {
  try {
    const latest = resolveBranch(archive, { timeline: 'latest' }, b);
    if (branchContains(latest, b.timeline, b.stopLsn)) return latest;
  } catch (e) {
    // A history file missing or damaged: historyProblems names it; the backup's own timeline is judged here.
    if (!isPgpitrError(e)) throw e;
  }
  try {
    return resolveBranch(archive, { timeline: 'current' }, b);
  } catch (e) {
    if (!isPgpitrError(e)) throw e;
    return timelineBranch(b.timeline, []);
  }
}

/**
 * History files restore's defaults need and cannot read (resolveBranch in plan.ts): recovery along
 * the latest timeline reads that timeline's history file only (it names every ancestor). Missing:
 * the one of the newest timeline with WAL archived past every timeline whose history is known, or
 * of a backup's timeline above them; damaged: the newest known one. Another timeline's history file
 * lost is no problem for restore's defaults (the newer one holds its history).
 */
export function historyProblems(archive: PlanArchive, backupTimelines: number[]): { name: string; problem: string }[] {
  const out: { name: string; problem: string }[] = [];
  const latestKnown = Math.max(1, ...archive.timelines());
  const top = Math.max(latestKnown, ...backupTimelines);
  const orphans = archive.segmentTimelines().filter((t) => t > top);
  const missing = new Map<number, string>();
  if (orphans.length > 0) missing.set(Math.max(...orphans), `WAL of timeline ${Math.max(...orphans)} is archived`);
  for (const t of backupTimelines) if (t > latestKnown && !missing.has(t)) missing.set(t, `a backup is on timeline ${t}`);
  for (const [t, holds] of [...missing].sort((a, b) => a[0] - b[0])) {
    const name = timelineHistoryFileName(t);
    out.push({
      name,
      problem: `history file ${name} is not in the archive, but ${holds}: restore cannot tell where timeline ${t} branched, and refuses to follow it without --target-timeline; archive it from the pg_wal of a server on timeline ${t} or later (pgpitr archive-push)`,
    });
  }
  if (latestKnown > 1) {
    try {
      archive.history(latestKnown);
    } catch (e) {
      if (!isPgpitrError(e)) throw e;
      out.push({ name: timelineHistoryFileName(latestKnown), problem: e.message });
    }
  }
  return out;
}
