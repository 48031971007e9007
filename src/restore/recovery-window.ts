// What a restore could do right now, for info (pure): which complete backups
// can be restored and why not, and the recovery windows: each runs from the
// end of a restorable backup (the earliest point a restore from it reaches) to
// the end of the unbroken WAL the archive holds after it, along the latest
// timeline when the backup is on its branch (else along its own, and the window
// says restore needs --target-timeline current). Backups whose WAL runs to the
// same end share one window, from the oldest of them; a gap in the archive (or
// a branch that leaves a backup behind) makes several. The same rules as
// restore's plan (plan.ts), so that what info promises is what restore does.

import { isPgpitrError } from '../common/errors.js';
import type { PgpitrError } from '../common/errors.js';
import { OffBranchRefusal } from './plan-refusals.js';
import { formatLsn } from '../postgres/lsn.js';
import { referencesOf } from '../repo/backup-set/record.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import { planRestore, resolveBranch } from './plan.js';
import { judgeLatest } from './latest-timeline.js';
import { branchContains } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { PlanArchive, PlanBackup, RestorePlan } from './plan.js';
import { planBackupOf } from './plan-inputs.js';
import type { TargetOptions } from './restore-target.js';

export interface RecoveryWindow {
  /** The earliest point: the end of the oldest backup of the window. */
  from: { backup: string; time: string; lsn: string; timeline: number };
  /** The latest: the last segment of the unbroken WAL after the window's newest backup. */
  to: { backup: string; timeline: number; segment: string };
  /**
   * Null when restore's defaults (latest timeline) reach it. Otherwise the window runs along the
   * backups' own timeline, which the archive's latest timeline does not follow (`why`): restore
   * needs --target-timeline current, and without --set it refuses targets past these backups.
   */
  needs: { option: string; why: string } | null;
  /**
   * Restore without --set refuses targets past the end of backup `past` (and before the end of
   * `until`, null: to the end of the archive): a backup off the latest timeline's branch, not known
   * to be its abandoned future (plan.ts, latest-timeline.ts). Those targets need --set: `set`, the
   * newest backup on the branch that ended before `past` did (null: none). Null when the defaults
   * reach the whole window.
   */
  withSet: { past: string; until: string | null; set: string | null; why: string } | null;
}

export interface RecoveryReach {
  /** Per complete backup: null when it can be restored, else why not. */
  problems: Map<string, string | null>;
  /** Oldest first; empty when no backup can be restored. */
  windows: RecoveryWindow[];
}

// Judged as a restore without a target (a stop on a segment boundary needs nothing past it: plan.ts).
const toTheEnd: TargetOptions = { target: { kind: 'end' }, exclusive: false, timeline: 'current', action: 'pause' };

/** `known`: backups already found unrestorable, and why (stored objects missing: stanza-reach.ts). */
export function recoveryReach(records: BackupRecord[], archive: PlanArchive, known: ReadonlyMap<string, string> = new Map()): RecoveryReach {
  const complete = new Set(records.filter((r) => r.state === 'complete').map((r) => r.id));
  const problems = new Map<string, string | null>();
  const byEnd = new Map<string, { oldest: PlanBackup; newest: PlanBackup; timeline: number; segment: string; needs: RecoveryWindow['needs'] }>();
  for (const r of records) {
    if (r.state !== 'complete') continue;
    const lost = referencesOf(r).find((id) => !complete.has(id));
    const b = planBackupOf(r);
    const problem = known.get(r.id) ?? (lost !== undefined ? `it takes files from backup ${lost}, which is not a complete backup` : refusal(() => planRestore([b], archive, toTheEnd, b.id))?.message ?? null);
    problems.set(r.id, problem);
    if (problem !== null) continue;
    const end = reachEnd(b, archive);
    if (end === null) continue;
    const key = `${end.timeline}/${end.segment}/${end.needs?.option ?? ''}`;
    const w = byEnd.get(key);
    if (!w) byEnd.set(key, { oldest: b, newest: b, ...end });
    else {
      if (b.stopLsn < w.oldest.stopLsn) w.oldest = b;
      if (b.stopLsn > w.newest.stopLsn) w.newest = b;
    }
  }
  const windows = [...byEnd.values()]
    .sort((a, b) => (a.oldest.stopLsn < b.oldest.stopLsn ? -1 : a.oldest.stopLsn > b.oldest.stopLsn ? 1 : 0))
    .map((w) => ({
      from: { backup: w.oldest.id, time: new Date(w.oldest.stopTimeMs).toISOString(), lsn: formatLsn(w.oldest.stopLsn), timeline: w.oldest.timeline },
      to: { backup: w.newest.id, timeline: w.timeline, segment: w.segment },
      needs: w.needs,
      withSet: null as RecoveryWindow['withSet'],
    }));
  // What restore's defaults (no --set, the latest timeline) say of the whole stanza: a newer backup off
  // the latest timeline's branch stops them past its end, whichever window the target is in.
  const refused = refusedByDefaults(records.filter((r) => r.state === 'complete').map(planBackupOf), archive);
  if (refused) for (const w of windows) if (w.needs === null) w.withSet = refused;
  return { problems, windows };
}

/**
 * The first run of targets restore's defaults refuse for a backup off the latest timeline's branch:
 * what they decide changes only where a backup ends, so a time target is tried at each backup's
 * end, oldest first, then the end of the archive.
 */
function refusedByDefaults(all: PlanBackup[], archive: PlanArchive): RecoveryWindow['withSet'] {
  // Only a backup off the latest timeline's branch, not known to be its abandoned future, makes any
  // refusal: without one (nearly always), no target is tried (each plan judges the whole archive).
  if (all.length === 0 || !anyInDoubt(all, archive)) return null;
  const plan = (backups: PlanBackup[], ms: number | null): RestorePlan | PgpitrError => {
    const target: TargetOptions = { ...toTheEnd, timeline: 'latest', ...(ms === null ? {} : { target: { kind: 'time', ms, text: new Date(ms).toISOString() } }) };
    try {
      return planRestore(backups, archive, target);
    } catch (e) {
      if (!isPgpitrError(e)) throw e;
      return e;
    }
  };
  const range = (first: { refusal: OffBranchRefusal; ms: number | null }, until: string | null): RecoveryWindow['withSet'] => {
    // --set names the backup the defaults would choose were the backups in doubt not there.
    let kept = all.filter((x) => x.id !== first.refusal.backup);
    for (;;) {
      const r = plan(kept, first.ms);
      if (!(r instanceof OffBranchRefusal)) return { past: first.refusal.backup, until, set: isPgpitrError(r) ? null : r.backup.id, why: first.refusal.message };
      kept = kept.filter((x) => x.id !== r.backup);
    }
  };
  let first: { refusal: OffBranchRefusal; ms: number | null } | null = null;
  for (const b of [...[...all].sort((x, y) => x.stopTimeMs - y.stopTimeMs), null]) {
    const ms = b === null ? null : b.stopTimeMs;
    const r = plan(all, ms);
    if (first === null) {
      if (r instanceof OffBranchRefusal) first = { refusal: r, ms };
    } else if (!(r instanceof OffBranchRefusal)) return range(first, b === null ? null : b.id);
  }
  return first === null ? null : range(first, null);
}

/**
 * The end of the unbroken WAL after backup b: along the latest timeline, as restore's defaults
 * follow it; else (b is not on its branch, or its history file is missing) along b's own, which
 * only --target-timeline current follows.
 */
function reachEnd(b: PlanBackup, archive: PlanArchive): { timeline: number; segment: string; needs: RecoveryWindow['needs'] } | null {
  let why = '';
  for (const timeline of ['latest', 'current'] as const) {
    try {
      const plan = planRestore([b], archive, { ...toTheEnd, timeline }, b.id);
      return { timeline: plan.branch.timeline, segment: plan.archiveEnd, needs: timeline === 'latest' ? null : { option: '--target-timeline current', why } };
    } catch (e) {
      if (!isPgpitrError(e)) throw e;
      why = e.message;
    }
  }
  return null;
}

function refusal(plan: () => unknown): PgpitrError | null {
  try {
    plan();
    return null;
  } catch (e) {
    if (!isPgpitrError(e)) throw e;
    return e;
  }
}

/** Whether a backup is off the latest timeline's branch and not known to be its abandoned future (plan.ts refuses for it). */
function anyInDoubt(all: PlanBackup[], archive: PlanArchive): boolean {
  let branch: TimelineBranch;
  try {
    branch = resolveBranch(archive, { timeline: 'latest' }, all[0]!);
  } catch {
    return false; // a missing history file: restore refuses for that, not for a backup off the branch
  }
  let judged: ReturnType<typeof judgeLatest>;
  try {
    judged = judgeLatest(all, archive);
  } catch {
    return false; // the latest timeline itself in doubt: restore's defaults refuse every target for that (LatestTimelineDoubt)
  }
  return all.some((b) => !branchContains(branch, b.timeline, b.stopLsn) && !(judged?.abandoned(b) ?? false));
}
