// The restore plan, decided before anything is written: which backup, along
// which timeline branch, which WAL segments replay needs and whether the
// archive holds them. Pure: it reads a description of the catalog and of the
// archive, so every rule here is unit-tested without a repository.
//
// Choosing a backup (without --set): the newest complete backup that is on the
// target branch and consistent before the target:
//   time: stopped at or before the target time; lsn: stopped at or before the
//   target LSN; xid: ended before the target transaction was assigned (when the
//   catalog knows the next xid at its end); name: consistent before the first restore
//   point of that name after its start (found in the archive by restore-point-search.ts;
//   without that search, the newest); immediate, end of archive: the newest.
// Refused, each naming what is missing: no such backup, a target before the
// chosen backup's consistency point, a history file the branch needs, a WAL
// segment between the backup's start and the target (or its stop LSN).

import { PgpitrError } from '../common/errors.js';
import { judgeLatest } from './latest-timeline.js';
import type { LastStored } from '../repo/last-stored.js';
import { formatLsn, segmentFileName, timelineHistoryFileName } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';
import { branchContains, branchSpans, segmentsAlong, timelineBranch, timelineOfSegment } from '../postgres/timeline-history.js';
import type { TimelineBranch, TimelineSwitch } from '../postgres/timeline-history.js';
import type { TargetOptions } from './restore-target.js';
import { standaloneHint } from './standalone-hint.js';
import { suits } from './plan-suits.js';
import { type NamedTry, historiesOf, mayEndAfter, noBackupFor, noneOnBranch, notArchivedHint, offBranch, restorePointOutOfReach } from './plan-refusals.js';

export interface PlanBackup {
  id: string;
  complete: boolean;
  timeline: number;
  startLsn: Lsn;
  stopLsn: Lsn;
  stopTimeMs: number;
  /** The next transaction ID to be assigned once the backup had ended, if known: any transaction at or above it committed after the backup's consistency point. */
  stopNextXid?: bigint | undefined;
  /** The oldest transaction running before the backup started, if known: any below it ended before, out of its reach. */ startXmin?: bigint | undefined;
  /** The set holds the WAL from its start to its stop (backup --wal=included). */
  walIncluded?: boolean | undefined;
  /** Pinned standalone: expire keeps only its own WAL (said when a target past it is refused). */
  standalone?: boolean | undefined;
}

export interface PlanArchive {
  segmentSize: number;
  hasSegment(timeline: number, segNo: bigint): boolean;
  /** The first segment archived on `timeline` after `segNo`, or null. */
  nextSegment(timeline: number, segNo: bigint): bigint | null;
  /** The parsed history of a timeline > 1, or null when its history file is not archived. */
  history(timeline: number): TimelineSwitch[] | null;
  /** Every timeline with a history file in the archive (and 1). */
  timelines(): number[];
  /** Every timeline with a segment in the archive. */
  segmentTimelines(): number[];
  /**
   * When files were stored, where the repository says: each history file's time, and the segment or
   * history file stored last (latest-timeline.ts). Without it, backups off the latest timeline's
   * branch are judged by the target alone.
   */
  stored?: {
    historyMs(timeline: number): number | null;
    last: LastStored | null;
    /** Of `timeline`'s segments numbered fromSegNo or more: the one stored last; those stored after afterMs, the first and how many (null: none). */
    lastFrom?(timeline: number, fromSegNo: bigint): LastStored | null;
    storedAfter?(timeline: number, fromSegNo: bigint, afterMs: number): { first: LastStored; count: number } | null;
  };
}

/** A restore point found in the archive (restore-point-search.ts). */
export interface PlanRestorePoint {
  lsn: Lsn;
  /** Just past the record, MAXALIGNed: recovery is consistent after it when this reaches the backup's stop LSN. */
  end: Lsn;
  timeMs: number;
  timeline: number;
}

/** Where the archive holds a named restore point, as far as looked for (restore-point-search.ts). */
export interface RestorePointLookup {
  /** The first restore point of the name at or after `from` along `branch`; null: none; undefined: not looked for yet. */
  firstFrom(branch: TimelineBranch, from: Lsn): PlanRestorePoint | null | undefined;
  /** Where, and why, the WAL read from `from` ended, when no point was found (for the user). */
  whereEnded(branch: TimelineBranch, from: Lsn): string | undefined;
  /** A standby waits for WAL past the archive's end: a point not archived yet may come (the backup suits). */
  readonly awaitsMissing: boolean;
}

/** planRestore needs to know where the restore point is along `branch` from `from`: look, then plan again. */
export class RestorePointUnknown extends Error {
  constructor(readonly branch: TimelineBranch, readonly from: Lsn) {
    super('restore point not looked for yet');
  }
}

export interface RestorePlan {
  backup: PlanBackup;
  /** Why this backup (for the user). */
  reason: string;
  branch: TimelineBranch;
  /** WAL replay must reach: the target LSN, or the backup's stop LSN. */
  walNeededTo: Lsn;
  /** The segments from the backup's start to walNeededTo (all present, or the plan is refused). */
  walNeeded: string[];
  /** The last segment of the unbroken run the archive holds from the backup's start along the branch. */
  archiveEnd: string;
  /**
   * A gap after archiveEnd: the segment missing there, and the first one archived after it along
   * the branch. Recovery to the end of the archive would end at the gap, and what follows it
   * would be lost without a word; null when nothing is archived past archiveEnd.
   */
  gap: { missing: string; resumesAt: string } | null;
  /**
   * Following the latest timeline: timelines of the branch's past that went on being archived past
   * their fork as far as the branch itself reaches (production going on while a copy restored and
   * promoted elsewhere archived the newer timeline into the stanza, or an old primary left running).
   * Said, not refused: after a point-in-time recovery in place the abandoned future is archived too.
   */
  wentOn: { timeline: number; fork: string; last: string }[];
  /** A named target found in the archive: where recovery stops. */
  restorePoint?: PlanRestorePoint | undefined;
}

export function planRestore(backups: PlanBackup[], archive: PlanArchive, t: TargetOptions, set?: string, points?: RestorePointLookup): RestorePlan {
  // Newest first. Along one history, by stop LSN; with --target-timeline current each backup
  // follows its own timeline, so backups of timelines forked apart compete: the newest is then the
  // one that ended last (an abandoned future after a point-in-time recovery in place has the
  // greater LSNs, not the later time).
  const byLsn = (a: PlanBackup, b: PlanBackup) => (a.stopLsn < b.stopLsn ? 1 : a.stopLsn > b.stopLsn ? -1 : 0);
  const byTime = (a: PlanBackup, b: PlanBackup) => b.stopTimeMs - a.stopTimeMs || byLsn(a, b);
  const complete = backups.filter((b) => b.complete).sort(t.timeline === 'current' ? byTime : byLsn);
  let candidates = complete;
  if (set !== undefined) {
    const b = backups.find((x) => x.id === set);
    if (!b) {
      throw new PgpitrError('ERR_NOT_FOUND', `backup "${set}" does not exist`, {
        hint: 'pgpitr info lists the backups of the stanza',
      });
    }
    if (!b.complete) {
      throw new PgpitrError('ERR_NOT_FOUND', `backup "${set}" is not complete and cannot be restored`, {
        hint: 'choose a complete backup (pgpitr info lists them with their state)',
      });
    }
    candidates = [b];
  }
  if (candidates.length === 0) {
    throw new PgpitrError('ERR_NOT_FOUND', 'the stanza has no complete backup', { hint: 'take one with pgpitr backup' });
  }

  if (set === undefined) refuseAmbiguousXid(t, complete);
  const branchFor = (b: PlanBackup): TimelineBranch => resolveBranch(archive, t, b);
  // Whether the latest timeline is this cluster's present is judged once, from when things were
  // stored (latest-timeline.ts), whatever the target; backups off its branch known to be its
  // abandoned future (after a point-in-time recovery in place) are then passed over.
  const judgement = set === undefined && t.timeline === 'latest' ? judgeLatest(complete, archive) : null;
  const chosen: { b: PlanBackup; branch: TimelineBranch; why: string }[] = [];
  const named: NamedTry<PlanBackup>[] = [];
  const notOnBranch: string[] = [];
  // The oldest backup that ended while the target transaction ran: chosen when none ended before it began.
  let across: { b: PlanBackup; branch: TimelineBranch } | null = null;
  for (const b of candidates) {
    const branch = branchFor(b);
    if (!branchContains(branch, b.timeline, b.stopLsn)) {
      // Unless known to be the abandoned future: a newer backup that is not on the latest timeline's
      // branch and suits the target means that branch may not be this cluster's present (a copy
      // restored and promoted elsewhere archived it, say). Said rather than fallen back from.
      // (For a restore point: one of that name after the backup's start along its own timeline; which backup on the branch reaches it is not known yet.)
      if (!judgement?.abandoned(b) && set === undefined && t.timeline === 'latest' && suitsOffBranch(b, t, archive, points)) throw offBranch(b, branch, { onBranch: t.target.kind === 'name' ? undefined : candidates.find((c) => branchContains(branchFor(c), c.timeline, c.stopLsn) && suits(c, t) !== null)?.id ?? null });
      notOnBranch.push(b.id);
      continue;
    }
    const point = t.target.kind === 'name' && points ? restorePointFor(points, archive, branch, b) : undefined;
    if (point !== undefined) named.push({ b, point, ended: point === null ? points!.whereEnded(branch, restorePointFrom(b, archive, branch)) : undefined });
    const why =
      point === undefined ? suits(b, t)
      : point === null ? (points!.awaitsMissing ? `newest backup (the restore point is not archived after its start: the standby waits for it)` : null)
      : point.end >= b.stopLsn ? `newest backup that ended before the restore point` : null;
    if (why !== null) chosen.push({ b, branch, why });
    if (chosen.length > 0) break;
    if (t.target.kind === 'xid' && mayEndAfter(b, t.target.xid)) across = { b, branch };
  }
  if (chosen.length === 0 && across && t.target.kind === 'xid') chosen.push({ ...across, why: `transaction ${t.target.xid} began before the backups after it ended: the oldest, whose recovery reaches it if it ended after its stop (checked in the archive)` });
  if (chosen.length === 0) {
    if (notOnBranch.length === candidates.length) throw set !== undefined ? offBranch(candidates[0]!, branchFor(candidates[0]!)) : noneOnBranch(candidates, branchFor(candidates[0]!), t.timeline === 'latest');
    if (t.target.kind === 'name' && named.length > 0) throw restorePointOutOfReach(t.target.name, named, set, archive.timelines().length > 1);
    throw noBackupFor(t, candidates, set);
  }
  const { b, branch, why } = chosen[0]!;
  const restorePoint = named.find((n) => n.b === b)?.point ?? undefined;
  const seg = BigInt(archive.segmentSize);
  // For a restore point: its last byte (a record crossing into the next segment needs that one too).
  // Without a target, a stop on a segment boundary needs the WAL before it only: recovery is
  // consistent there, finds no more WAL and ends (a backup of a standby of a quiet primary, whose
  // last record was a WAL switch: the segment after it may not come for hours).
  const walNeededTo = t.target.kind === 'lsn' && t.target.lsn > b.stopLsn ? t.target.lsn : restorePoint && restorePoint.end - 1n > b.stopLsn ? restorePoint.end - 1n : t.target.kind === 'end' && b.stopLsn % seg === 0n ? b.stopLsn - 1n : b.stopLsn;
  // What replay needs from the archive: from the backup's start, or, when the set holds the WAL to
  // its stop, nothing for a target at the stop, and for one past it from the stop segment on: the
  // set's copy of that segment ends at the stop (zero-filled after it, as pg_basebackup's).
  const walFrom = !b.walIncluded ? b.startLsn : walNeededTo > b.stopLsn ? (b.stopLsn / seg) * seg : ((b.stopLsn - 1n) / seg + 1n) * seg;
  // The segment holding the byte at walNeededTo, even when that is a segment's first byte: with a
  // target, PostgreSQL stops only once it has read the record after the consistent point (with the
  // WAL before it only, recovery is consistent, finds no more WAL and fails: "recovery ended before
  // configured recovery target was reached").
  // Listed whole up to 100,000 segments (each missing one counted); past that (an LSN far beyond
  // the archive's end) only up to the first missing.
  const total = walFrom > walNeededTo ? 0n : walNeededTo / seg - walFrom / seg + 1n;
  const along = total === 0n ? [] : segmentsAlong(branch, walFrom, walNeededTo, archive.segmentSize, total > 100_000n ? (tl, s) => !archive.hasSegment(tl, s) : undefined);
  const missing = along.filter((s) => !archive.hasSegment(s.timeline, s.segNo));
  const names = along.map((s) => segmentFileName(s.timeline, s.segNo, archive.segmentSize));
  if (missing.length > 0) {
    const first = segmentFileName(missing[0]!.timeline, missing[0]!.segNo, archive.segmentSize);
    // Only segments past the backup's stop are missing, and nothing after them is archived along the
    // branch: not yet archived, rather than a gap (which waiting never fills).
    const beyond = missing.every((m) => m.segNo * seg >= b.stopLsn) && firstAlongAfter(archive, branch, missing[0]!.segNo) === null;
    // (A target other than an LSN needs WAL to the stop only: what is missing past it is at the stop.)
    const atStop = beyond && walNeededTo === b.stopLsn;
    throw new PgpitrError('ERR_NOT_FOUND', atStop
      ? `WAL segment ${first} is not archived yet: backup ${b.id} becomes consistent at ${formatLsn(b.stopLsn)}, the start of that segment, and PostgreSQL reads the record there before it stops at a target`
      : beyond
        ? `target LSN ${formatLsn(walNeededTo)} is beyond the end of the archive: WAL segment ${first} is not archived`
        : `the archive cannot reach the target: WAL segment ${first} is missing (${BigInt(along.length) < total ? 'the first missing' : missing.length} of the ${total} segments from backup ${b.id}'s start to ${formatLsn(walNeededTo)})`, {
      hint: beyond && b.standalone
        ? `${standaloneHint(b.id)}archive the missing WAL`
        : atStop && t.target.kind === 'immediate'
          ? 'the primary archives it once WAL is written there: pgpitr check against the primary writes a restore point, switches WAL and waits for it to be archived; then restore again. Or restore without a target: recovery ends at the end of the archive, here where the backup is consistent'
          : beyond
          ? notArchivedHint(branch, historiesOf(archive), missing[0]!.segNo, archive.segmentSize)
          : 'the archive has a gap (pgpitr info shows it); restore an earlier target, or a backup taken after the gap',
    });
  }
  // How far the archive runs on from there (for the plan's output). Not past a stop segment only
  // the set holds: its copy ends at the stop.
  let end = along[along.length - 1] ?? { timeline: b.timeline, segNo: (b.stopLsn - 1n) / seg };
  const setCopyOnly = along.length === 0 && b.stopLsn % seg !== 0n && !archive.hasSegment(end.timeline, end.segNo);
  if (!setCopyOnly) end = runEnd(archive, branch, end);
  // Anything archived past that run: the run ends at a gap. (When only the set holds the stop
  // segment, that segment is what is missing: the set's copy ends at the stop.)
  const after = firstAlongAfter(archive, branch, end.segNo);
  const hole = setCopyOnly ? end : segmentsAlong(branch, (end.segNo + 1n) * seg, (end.segNo + 1n) * seg, archive.segmentSize)[0]!;
  const wentOn: RestorePlan['wentOn'] = [];
  if (t.timeline === 'latest') {
    for (const a of branch.ancestors) {
      if (a.timeline < b.timeline) continue;
      let last: bigint | null = null;
      for (let s = (a.switchpoint - 1n) / seg; ; ) {
        const n = archive.nextSegment(a.timeline, s);
        if (n === null) break;
        last = s = n;
      }
      if (last !== null && last >= end.segNo) wentOn.push({ timeline: a.timeline, fork: formatLsn(a.switchpoint), last: segmentFileName(a.timeline, last, archive.segmentSize) });
    }
  }
  return {
    wentOn,
    restorePoint,
    backup: b,
    reason: set !== undefined ? `backup ${b.id} was asked for (--set)` : why,
    branch,
    walNeededTo,
    walNeeded: names,
    archiveEnd: segmentFileName(end.timeline, end.segNo, archive.segmentSize),
    gap: after === null ? null : { missing: segmentFileName(hole.timeline, hole.segNo, archive.segmentSize), resumesAt: segmentFileName(after.timeline, after.segNo, archive.segmentSize) },
  };
}

/** The first segment archived along the branch after segment `segNo` (on the timeline replay reads it from), or null. */
export function firstAlongAfter(archive: Pick<PlanArchive, 'nextSegment' | 'segmentSize'>, branch: TimelineBranch, segNo: bigint): { timeline: number; segNo: bigint } | null {
  for (const span of branchSpans(branch, archive.segmentSize)) {
    if (span.to !== null && span.to <= segNo) continue;
    const from = span.from > segNo ? span.from - 1n : segNo;
    const next = archive.nextSegment(span.timeline, from);
    if (next !== null && (span.to === null || next <= span.to)) return { timeline: span.timeline, segNo: next };
  }
  return null;
}

/** The branch recovery will follow from backup b for the target timeline asked for. */
export function resolveBranch(archive: PlanArchive, t: Pick<TargetOptions, 'timeline'>, b: PlanBackup): TimelineBranch {
  let tli: number;
  if (t.timeline === 'current') tli = b.timeline;
  else if (t.timeline === 'latest') {
    tli = Math.max(b.timeline, ...archive.timelines());
    // WAL of a later timeline whose history file is missing (lost, or never archived): recovery would
    // stop at the end of timeline tli, and the server, promoted, would take that later timeline's
    // number again: its WAL would then be overwritten in the archive, and never restored.
    const orphans = archive.segmentTimelines().filter((x) => x > tli).sort((x, y) => x - y);
    if (orphans.length > 0) {
      const last = orphans[orphans.length - 1]!;
      throw new PgpitrError('ERR_NOT_FOUND', `the archive holds WAL of timeline ${orphans.join(', ')} but not the history file ${timelineHistoryFileName(last)}: which timeline is the latest, and where it branched, cannot be known`, {
        hint: `archive the missing history file from the pg_wal of the server on timeline ${last} (pgpitr archive-push); or give --target-timeline ${tli} to recover along the newest timeline whose history is known, knowing that the WAL of timeline ${orphans.join(', ')} is left out`,
      });
    }
  } else tli = t.timeline;
  if (tli === 1) return timelineBranch(1, []);
  const history = archive.history(tli);
  if (history === null) {
    if (tli === b.timeline && t.timeline !== 'latest') return timelineBranch(tli, []);
    throw new PgpitrError('ERR_NOT_FOUND', `history file ${timelineHistoryFileName(tli)} of timeline ${tli} is not in the archive`, {
      hint: 'recovery along that timeline needs it; archive it from the server\'s pg_wal, or choose another --target-timeline',
    });
  }
  return timelineBranch(tli, history);
}

/**
 * A 32-bit --target-xid (from a log line, %x) while the backups span transaction ID epochs: the
 * backups of later epochs all began after it, so the newest of an older epoch would be chosen and
 * recovery stop at that epoch's transaction, days before the one meant. Refused, with the 64-bit
 * forms (pg_current_xact_id()'s), which the plan compares exactly; --set chooses for epoch 0.
 */
function refuseAmbiguousXid(t: TargetOptions, complete: PlanBackup[]): void {
  if (t.target.kind !== 'xid' || t.target.xid >= 2n ** 32n) return;
  const epochs = complete.filter((b) => b.stopNextXid !== undefined).map((b) => b.stopNextXid! >> 32n);
  const x = t.target.xid;
  if (!epochs.some((e) => e > 0n)) return;
  // Only when an older epoch's backup would be chosen (none: noBackupFor gives the 64-bit form).
  if (!complete.some((b) => b.stopNextXid === undefined || b.stopNextXid <= x)) return;
  const low = epochs.reduce((a, e) => (e < a ? e : a));
  const high = epochs.reduce((a, e) => (e > a ? e : a));
  const forms: string[] = [];
  for (let e = high + 1n; e >= low && forms.length < 3; e--) forms.push(`${(e << 32n) | x} (epoch ${e})`);
  throw new PgpitrError('ERR_USAGE', `target transaction ${x} is a 32-bit ID, and the stanza's backups span transaction ID epochs ${low} to ${high}: which epoch's transaction ${x} is meant cannot be told, and PostgreSQL stops at the first one it meets`, {
    hint: `give the 64-bit ID, as pg_current_xact_id() shows it (epoch × 4294967296 + ${x}): ${forms.join(', ')}; for the transaction of epoch 0, name the backup to restore with --set`,
  });
}

// Where recovery from b meets a restore point first: its start (one written while the backup ran
// fails recovery: an older backup is chosen); for a set holding WAL the archive lacks, its stop.
function restorePointFrom(b: PlanBackup, archive: PlanArchive, branch: TimelineBranch): Lsn {
  if (!b.walIncluded || b.stopLsn <= b.startLsn) return b.startLsn;
  const own = segmentsAlong(branch, b.startLsn, b.stopLsn - 1n, archive.segmentSize);
  return own.every((s) => archive.hasSegment(s.timeline, s.segNo)) ? b.startLsn : b.stopLsn;
}

/** Whether b, off the branch followed, suits the target along its own timeline; for a restore point, found there (RestorePointUnknown: not looked for yet). */
function suitsOffBranch(b: PlanBackup, t: TargetOptions, archive: PlanArchive, points: RestorePointLookup | undefined): boolean {
  if (t.target.kind !== 'name' || !points) return suits(b, t) !== null;
  const p = restorePointFor(points, archive, resolveBranch(archive, { timeline: 'current' }, b), b);
  return p === null ? points.awaitsMissing : p.end >= b.stopLsn;
}

/** The restore point recovery from b would stop at (the first after its start), or RestorePointUnknown when not looked for yet. */
function restorePointFor(points: RestorePointLookup, archive: PlanArchive, branch: TimelineBranch, b: PlanBackup): PlanRestorePoint | null {
  const from = restorePointFrom(b, archive, branch);
  const p = points.firstFrom(branch, from);
  if (p === undefined) throw new RestorePointUnknown(branch, from);
  return p;
}

/**
 * The last segment of the unbroken run the archive holds along the branch from `from`. Walked
 * once per archive and branch: what each walk passes is remembered, so that info and check,
 * planning for every backup over a long archive, do not walk the same run again for each one.
 */
const runEnds = new WeakMap<PlanArchive, Map<number, Map<string, { timeline: number; segNo: bigint }>>>();

function runEnd(archive: PlanArchive, branch: TimelineBranch, from: { timeline: number; segNo: bigint }): { timeline: number; segNo: bigint } {
  let byBranch = runEnds.get(archive);
  if (!byBranch) runEnds.set(archive, (byBranch = new Map()));
  let memo = byBranch.get(branch.timeline);
  if (!memo) byBranch.set(branch.timeline, (memo = new Map()));
  const spans = branchSpans(branch, archive.segmentSize);
  const passed: string[] = [];
  let end = from;
  for (;;) {
    const key = `${end.timeline}/${end.segNo}`;
    const known = memo.get(key);
    if (known) {
      end = known;
      break;
    }
    passed.push(key);
    const segNo = end.segNo + 1n;
    const timeline = timelineOfSegment(spans, segNo);
    if (!archive.hasSegment(timeline, segNo)) break;
    end = { timeline, segNo };
  }
  for (const s of passed) memo.set(s, end);
  return end;
}
