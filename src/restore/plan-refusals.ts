// What the restore plan (plan.ts) says when it refuses: no backup consistent before the
// target, a named restore point out of reach, a newer backup off the latest timeline's branch.
// Each names the backup, the position and what to do instead.

import { PgpitrError } from '../common/errors.js';
import { formatLsn, segmentFileName } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { TargetOptions } from './restore-target.js';
import { CLOCK_SLACK_MINUTES } from './clock-slack.js';

/** What a refusal says of a backup (plan.ts's PlanBackup has it all). */
interface RefusedBackup {
  id: string;
  timeline: number;
  stopLsn: Lsn;
  stopTimeMs: number;
  stopNextXid?: bigint | undefined;
  startXmin?: bigint | undefined;
}

/**
 * Whether transaction `xid`, begun before backup b ended, may have ended after it (recovery from b
 * then reaches it): not when it was below the oldest transaction running before b started (it had
 * ended), nor when a wraparound makes the 32-bit comparison recovery does ambiguous.
 */
export function mayEndAfter(b: RefusedBackup, xid: bigint): boolean {
  if (b.stopNextXid === undefined || b.stopNextXid <= xid || b.stopNextXid - xid >= 2n ** 31n) return false;
  return b.startXmin === undefined || xid >= b.startXmin;
}

/** A backup the restore point was looked for from, and what was found (null: none). */
export interface NamedTry<B extends RefusedBackup = RefusedBackup> {
  b: B;
  point: { lsn: Lsn; end: Lsn; timeMs: number; timeline: number } | null;
  /** Where the WAL read from the backup ended, when it held no point. */
  ended?: string | undefined;
}

/** A refusal because a backup is not on the branch followed: which backup (info tells which windows restore's defaults refuse: recovery-window.ts). */
export class OffBranchRefusal extends PgpitrError {
  constructor(readonly backup: string, message: string, hint: string) {
    super('ERR_NOT_FOUND', message, { hint });
  }
}

/**
 * Backup b is not on the branch followed. `following`: the newest timeline followed by restore's
 * defaults (then it may be a copy's, or b the abandoned future of a point-in-time recovery in
 * place), with the newest backup on its branch when there is one (undefined: not known, for a
 * restore point whose position along that branch is not looked for).
 */
export function offBranch(b: RefusedBackup, branch: TimelineBranch, following?: { onBranch: string | null | undefined }): OffBranchRefusal {
  const fork = branch.ancestors.find((a) => a.timeline === b.timeline);
  const where = fork ? `timeline ${branch.timeline} forked from timeline ${b.timeline} at ${formatLsn(fork.switchpoint)}, before the backup ended` : `timeline ${b.timeline} is not in the history of timeline ${branch.timeline}`;
  const own = `to recover along the backup's own timeline give --target-timeline current (or ${b.timeline})`;
  const hint = following
    ? `${own}; to follow timeline ${branch.timeline}, give --set ${following.onBranch === undefined ? 'with a backup on its branch that ended before the restore point (pgpitr info lists them)' : following.onBranch ?? 'with a backup on its branch (none is left: take one)'}. ` +
      `After a point-in-time recovery in place, a backup of the abandoned timeline that ended less than ${CLOCK_SLACK_MINUTES} minutes before timeline ${branch.timeline} began cannot be told by its times from production's backups while a copy restored and promoted elsewhere archives timeline ${branch.timeline} into this stanza (restore such copies with --archive-mode off): ` +
      `a backup taken on timeline ${branch.timeline}, or expire --set ${b.id} when it is of the abandoned timeline, ends the doubt`
    : `${own}, or choose a backup on the branch of timeline ${branch.timeline} with --set (pgpitr info lists the backups and their timelines)`;
  return new OffBranchRefusal(b.id, `backup ${b.id} (timeline ${b.timeline}, stop ${formatLsn(b.stopLsn)}) is not on the branch of timeline ${branch.timeline}: ${where}`, hint);
}

/** No candidate backup is on the branch of the timeline asked for (an older one, whose backups were expired). */
export function noneOnBranch(candidates: RefusedBackup[], branch: TimelineBranch, followingLatest: boolean): OffBranchRefusal {
  const timelines = [...new Set(candidates.map((b) => b.timeline))].sort((x, y) => x - y);
  return new OffBranchRefusal(
    candidates[0]!.id,
    `no complete backup is on the branch of timeline ${branch.timeline}: the backups are of timeline${timelines.length > 1 ? 's' : ''} ${timelines.join(', ')}, which ${timelines.length > 1 ? 'are' : 'is'} not in its history or forked from it before ${timelines.length > 1 ? 'they' : 'it'} ended`,
    `a recovery along timeline ${branch.timeline} needs a backup taken on it (or on an ancestor before the fork): those were expired or never taken; ` +
      (followingLatest ? `give --target-timeline current to recover along the backups' own timelines, or take a backup on timeline ${branch.timeline}` : `restore along the backups' timelines (leave out --target-timeline, or give current)`),
  );
}

/** No backup reaches the named restore point: it is not in the archive after them, or recovery would meet it before it is consistent. */
export function restorePointOutOfReach(name: string, named: NamedTry[], set: string | undefined, otherTimelines: boolean): PgpitrError {
  const oldest = named[named.length - 1]!;
  const subject = set !== undefined ? `backup ${set}` : named.length === 1 ? `backup ${oldest.b.id}` : `any of the ${named.length} backups looked at (oldest: ${oldest.b.id})`;
  if (oldest.point === null) {
    return new PgpitrError('ERR_NOT_FOUND', `restore point "${name}" is not in the archive after the start of ${subject}: recovery would replay the WAL it can read and fail without reaching it${oldest.ended ? ` (${oldest.ended})` : ''}`, {
      hint: `check the name (it is case-sensitive; pg_create_restore_point() gave it); a restore point written just now is in a segment not archived yet: switch WAL on the primary (pgpitr check does) and restore again; an older occurrence needs an older backup, which --set names${otherTimelines ? '; one written on another timeline needs --target-timeline' : ''}`,
    });
  }
  const p = oldest.point;
  return new PgpitrError('ERR_NOT_FOUND', `restore point "${name}" (${formatLsn(p.lsn)} on timeline ${p.timeline}, ${new Date(p.timeMs).toISOString()}) is before the point where ${subject} is consistent (stop LSN ${formatLsn(oldest.b.stopLsn)}): recovery stops at the first restore point of that name after the backup's start`, {
    hint: set !== undefined ? 'choose an older backup (pgpitr info lists them), or leave out --set: restore picks the newest backup that reaches the restore point' : 'no backup ended before it; a restore point of the same name written later can be reached from a backup taken before it',
  });
}

export function noBackupFor(t: TargetOptions, candidates: RefusedBackup[], set: string | undefined): PgpitrError {
  const target = t.target;
  const oldest = candidates[candidates.length - 1]!;
  const what =
    target.kind === 'time' ? `target time ${target.text}` : target.kind === 'lsn' ? `target LSN ${target.text}` : target.kind === 'xid' ? `target transaction ${target.xid}` : 'the target';
  const subject = set !== undefined ? `backup "${set}"` : 'every backup';
  // A 32-bit xid (as a log or pg_stat_activity prints it) of a cluster past its first xid epoch.
  const horizon = oldest.stopNextXid ?? oldest.startXmin ?? 0n;
  const epoch = target.kind === 'xid' && target.xid < 2n ** 32n && horizon >= 2n ** 32n ? horizon >> 32n : null;
  const hint =
    epoch !== null && target.kind === 'xid'
      ? `--target-xid takes the 64-bit transaction ID, with its epoch (as pg_current_xact_id() or txid_current() print it); the backups are of epoch ${epoch} or later: transaction ${target.xid} of epoch ${epoch} is ${(epoch << 32n) + target.xid}`
      : 'a backup can only be recovered to a point after it ended; choose a later target or a backup taken before it';
  // (A 32-bit ID of a later epoch is not compared: the hint gives its 64-bit form.)
  if (target.kind === 'xid' && epoch === null && oldest.startXmin !== undefined && target.xid < oldest.startXmin) {
    return new PgpitrError('ERR_NOT_FOUND', `${what} had ended before ${set !== undefined ? `backup ${oldest.id}` : `the oldest backup, ${oldest.id},`} started (the oldest transaction running then was ${oldest.startXmin}): recovery from it never meets its end`, {
      hint:
        set !== undefined
          ? 'a transaction is reached from a backup that ended before it ended: leave out --set (restore picks such a backup), or give an older one (pgpitr info lists them)'
          : 'a transaction is reached from a backup that ended before it ended: none is left (expired?); give a later target, or restore without one',
    });
  }
  return new PgpitrError('ERR_NOT_FOUND', `${what} is before the point where ${subject} is consistent (${set !== undefined ? '' : 'oldest: '}${oldest.id}, stop LSN ${formatLsn(oldest.stopLsn)}, ended ${new Date(oldest.stopTimeMs).toISOString()})`, { hint });
}

/**
 * The hint for WAL past the archive's end along `branch`: not archived yet, unless the timeline
 * followed ended (a newer timeline forked from it, in `histories`): its WAL past the fork never
 * comes (its last segment is archived as .partial only), and a later target is on the child.
 */
export function notArchivedHint(branch: TimelineBranch, histories: TimelineHistories, missingSegNo: bigint, segmentSize: number): string {
  return timelineEndedHint(branch, histories, missingSegNo, segmentSize) ?? 'the WAL up to that position has not been archived yet: switch WAL on the primary and wait for it to be archived (pgpitr check does both), then restore again; or the position is on another timeline';
}

type TimelineHistories = { timeline: number; ancestors: { timeline: number; switchpoint: Lsn }[] }[];

/** Every timeline's history in the archive, as notArchivedHint and timelineEndedHint take them. */
export function historiesOf(archive: { timelines(): number[]; history(timeline: number): { timeline: number; switchpoint: Lsn }[] | null }): TimelineHistories {
  return archive.timelines().map((tl) => ({ timeline: tl, ancestors: archive.history(tl) ?? [] }));
}

/**
 * When the timeline followed ended (a newer one forked from it, in `histories`) at or before the
 * first segment missing: why nothing past its end comes, and what reaches a later target. Null for
 * a segment missing before the fork (WAL not archived, which the newer timeline lacks too).
 */
export function timelineEndedHint(branch: TimelineBranch, histories: TimelineHistories, missingSegNo: bigint, segmentSize: number): string | null {
  // Its direct child (its history's last line names it), else any timeline it is an ancestor of.
  const child = histories.find((h) => h.ancestors[h.ancestors.length - 1]?.timeline === branch.timeline) ?? histories.find((h) => h.ancestors.some((a) => a.timeline === branch.timeline));
  const fork = child?.ancestors.find((a) => a.timeline === branch.timeline);
  if (!child || !fork || missingSegNo < fork.switchpoint / BigInt(segmentSize)) return null;
  const c = child.timeline;
  return (
    `timeline ${branch.timeline} ended at ${formatLsn(fork.switchpoint)}, where timeline ${c} began, and is archived no further than segment ${segmentFileName(branch.timeline, missingSegNo - 1n, segmentSize)}: ` +
    `the segment holding the fork is archived whole only on timeline ${c} (timeline ${branch.timeline}'s as .partial at most, after a failover), and what timeline ${branch.timeline} wrote past its last archived segment went with the server that wrote it. ` +
    `A target before the fork is reached along timeline ${c}, which follows timeline ${branch.timeline} up to it: restore with --target-timeline ${c} (or latest); one after it, along timeline ${c}'s own history`
  );
}
