// Whether the newest timeline of the archive is this cluster's present, for a
// restore that follows the latest timeline (the default). A copy of the cluster
// restored and promoted elsewhere with the stanza's archive_command (a restore
// drill) archives its new timeline into the stanza: PostgreSQL's "latest" then
// means that copy's history, and a recovery to a point after the copy's fork
// would replay the copy's WAL and stop cleanly on the wrong data. Told apart
// from a point-in-time recovery in place (whose new timeline is the present,
// and whose abandoned future stays archived) by when things were stored, with
// CLOCK_SLACK_MS of doubt where the server's clock (backups) meets the
// repository's (its files); none between two files of the repository: a
// timeline archived past its fork after the newest timeline began, and after
// the newest's last archived file too, went on longer than it (in place, the
// old server archived its last files before the restore that made the new
// timeline; a failover's old primary archiving leftovers on its return stops,
// while the new primary goes on: refused only until the newest archives again),
// or whose stores after the newest began span more than LEFTOVERS_MS or
// LEFTOVER_SEGMENTS (a copy archiving its timeline as production goes on,
// whichever stored last):
//   - refused: a backup off the newest timeline's branch that ended after that
//     timeline's history file was stored; or the file stored last is a segment
//     of another timeline, past its fork from the branch (or off the branch),
//     stored after the newest timeline began: that timeline went on;
//   - passed over: a backup off the branch that ended before the newest
//     timeline began (the abandoned future). Any other backup off the branch is
//     judged as without stored times (plan.ts: refused when it suits the target).
// A refusal holds for every repository (restore does not try the next one).

import { PgpitrError } from '../common/errors.js';
import { CLOCK_SLACK_MINUTES } from './clock-slack.js';
import { formatLsn, parseSegmentFileName } from '../postgres/lsn.js';
import type { LastStored } from '../repo/last-stored.js';
import type { Lsn } from '../postgres/lsn.js';
import { branchContains, timelineBranch } from '../postgres/timeline-history.js';
import type { TimelineSwitch } from '../postgres/timeline-history.js';

interface Backup {
  id: string;
  timeline: number;
  stopLsn: Lsn;
  stopTimeMs: number;
}

interface Archive {
  segmentSize: number;
  history(timeline: number): TimelineSwitch[] | null;
  timelines(): number[];
  /** The timelines the archive holds segments of. */
  segmentTimelines?(): number[];
  stored?: { historyMs(timeline: number): number | null; last: LastStored | null; lastFrom?(timeline: number, fromSegNo: bigint): LastStored | null; storedAfter?(timeline: number, fromSegNo: bigint, afterMs: number): { first: LastStored; count: number } | null };
}

const CLOCK_SLACK_MS = CLOCK_SLACK_MINUTES * 60 * 1000;
/** How long an old primary's leftovers take to archive (stores of an older timeline past the fork spanning longer went on). */
const LEFTOVERS_MS = 2 * 60 * 1000;
/** How many segments past its fork an old primary may have left to archive (more went on). */
const LEFTOVER_SEGMENTS = 3;

/**
 * The newest timeline may be a copy's: restore stops here, whichever repository it reads.
 * `transient`: what the newest timeline's next archived segment ends (an old primary's last
 * segments archived after a failover), which check says as a warning.
 */
export class LatestTimelineDoubt extends PgpitrError {
  transient = false;
}

export interface LatestJudgement {
  /** Whether a backup off the newest timeline's branch is known to be its abandoned future. */
  abandoned(b: Backup): boolean;
}

/** Throws LatestTimelineDoubt on evidence the newest timeline is not the present; null when nothing can be judged. */
export function judgeLatest(backups: Backup[], archive: Archive): LatestJudgement | null {
  const latest = Math.max(...archive.timelines());
  if (latest === 1 || !archive.stored) return null;
  const history = archive.history(latest);
  if (history === null) return null; // resolveBranch says what is missing
  const branch = timelineBranch(latest, history);
  const createdMs = archive.stored.historyMs(latest);
  if (createdMs === null) return null;
  const ways = (other: number) =>
    `give --target-timeline ${other} to recover along timeline ${other} as it went on, or --target-timeline ${latest} to follow timeline ${latest}; a copy restored and promoted elsewhere with this stanza's archive_command archives its timeline into the stanza (restore such copies with --archive-mode off)`;
  const later = backups.filter((b) => !branchContains(branch, b.timeline, b.stopLsn) && b.stopTimeMs > createdMs + CLOCK_SLACK_MS).sort((a, b) => b.stopTimeMs - a.stopTimeMs)[0];
  if (later) {
    throw new LatestTimelineDoubt('ERR_CHECK', `the newest timeline of the archive, ${latest}, may not be this cluster's present: backup ${later.id} (timeline ${later.timeline}, stop ${formatLsn(later.stopLsn)}) is not on its branch and ended ${new Date(later.stopTimeMs).toISOString()}, after timeline ${latest} began (its history file was stored ${new Date(createdMs).toISOString()})`, { hint: ways(later.timeline) });
  }
  // Another timeline archived off the newest timeline's branch after that timeline began: it went on
  // (production, while a copy restored from an older backup and promoted archives its timeline here
  // too), whichever file happens to be stored last. Off the branch: an ancestor's segments past its
  // fork, any segment of another timeline (production on a sibling after a failover). After a
  // point-in-time recovery in place, the old timeline stopped being archived before the new one began.
  const seg = BigInt(archive.segmentSize);
  // Since when another timeline archived is evidence: after the newest began, and after its own last segment.
  const newestWent = Math.max(createdMs, archive.stored.lastFrom?.(latest, 0n)?.ms ?? 0);
  for (const other of archive.segmentTimelines?.() ?? []) {
    const fork = branch.ancestors.find((a) => a.timeline === other);
    // A later timeline, or one off the branch without its history file: resolveBranch's orphan check
    // says what is missing. An ancestor's fork is in the newest timeline's own history.
    if (other >= latest || (fork === undefined && other !== 1 && archive.history(other) === null)) continue;
    const fromSegNo = fork ? (fork.switchpoint - 1n) / seg + 1n : 0n;
    const past = archive.stored.lastFrom?.(other, fromSegNo) ?? null;
    // Archived on after the newest began, more than a failover's old primary has left to archive
    // (a few segments, in a burst): it went on too.
    const after = archive.stored.storedAfter?.(other, fromSegNo, createdMs) ?? null;
    const wentOn = after !== null && (after.count > LEFTOVER_SEGMENTS || past!.ms - after.first.ms > LEFTOVERS_MS);
    if (past !== null && (past.ms > newestWent || wentOn)) {
      const where = fork ? `past its fork to timeline ${latest} at ${formatLsn(fork.switchpoint)}` : `which is not in timeline ${latest}'s history`;
      const why = past.ms > newestWent ? 'and after its last archived file' : `${after!.count} segments of it over ${Math.round((past.ms - after!.first.ms) / 1000)} s, more than a failover's old primary leaves`;
      const wait = past.ms > newestWent && !wentOn ? `; after a failover whose old primary archived its last segments, timeline ${latest}'s next archived segment ends this doubt` : '';
      throw Object.assign(new LatestTimelineDoubt('ERR_CHECK', `the newest timeline of the archive, ${latest}, may not be this cluster's present: timeline ${other} went on being archived, ${where} (segment ${past.name} stored ${new Date(past.ms).toISOString()}), after timeline ${latest} began (${new Date(createdMs).toISOString()}) ${why}`, { hint: `${ways(other)}${wait}` }), { transient: wait !== '' });
    }
  }
  const last = archive.stored.last;
  const segNo = last === null ? null : (parseSegmentFileName(last.name, archive.segmentSize)?.segNo ?? null); // null: a history file
  // A later timeline, or one without its history file: resolveBranch's orphan check says what is missing.
  if (last !== null && segNo !== null && last.timeline < latest && (last.timeline === 1 || archive.history(last.timeline) !== null) && last.ms > newestWent) {
    const fork = branch.ancestors.find((a) => a.timeline === last.timeline);
    if (fork === undefined || segNo > (fork.switchpoint - 1n) / seg) {
      throw Object.assign(new LatestTimelineDoubt('ERR_CHECK', `the newest timeline of the archive, ${latest}, may not be this cluster's present: timeline ${last.timeline} is archived now (the file stored last, ${new Date(last.ms).toISOString()}, is of timeline ${last.timeline}${fork ? `, past its fork to timeline ${latest} at ${formatLsn(fork.switchpoint)}` : `, which is not in timeline ${latest}'s history`}), ${new Date(createdMs).toISOString()} being when timeline ${latest} began`, { hint: ways(last.timeline) }), { transient: true });
    }
  }
  return { abandoned: (b) => !branchContains(branch, b.timeline, b.stopLsn) && b.stopTimeMs < createdMs - CLOCK_SLACK_MS };
}
