// Recovery to the end of the archive along a timeline none of whose WAL is archived yet: the
// timeline's first file (its parent's WAL up to the fork, then its own) is archived only once it
// fills, or archive_timeout passes, after the promotion; until then the archive along the branch
// ends before the fork. PostgreSQL would take the parent's file of that number instead and replay
// what the parent went on with past the fork; archive-get refuses it (repo/followed-branch.ts), and
// recovery would end at the previous segment, short of the fork, while the latest timeline was
// asked for. Refused, saying how to go on (a standby waits for that WAL: said).

import { PgpitrError } from '../common/errors.js';
import { formatLsn, parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineAt } from '../postgres/timeline-history.js';
import type { RestorePlan } from './plan.js';
import type { TargetOptions } from './restore-target.js';

export function checkUnbegunTimeline(plan: RestorePlan, req: { target: TargetOptions; standby: boolean; acceptArchiveGap?: boolean | undefined; segmentSize: number; log(line: string): void }): void {
  const spans = branchSpans(plan.branch, req.segmentSize);
  const last = spans[spans.length - 1]!;
  const fork = plan.branch.ancestors[plan.branch.ancestors.length - 1];
  const end = parseSegmentFileName(plan.archiveEnd, req.segmentSize);
  if (spans.length < 2 || fork === undefined || end === null || end.segNo >= last.from || req.target.target.kind !== 'end') return;
  const first = segmentFileName(last.timeline, last.from, req.segmentSize);
  // The timeline replay reads before it: the last line's own, unless that one never began (a history whose switchpoints go backwards).
  const parent = timelineAt(plan.branch, fork.switchpoint - 1n);
  const what = `timeline ${last.timeline} has no WAL archived yet: its first segment ${first} (timeline ${parent}'s WAL up to the fork at ${formatLsn(fork.switchpoint)}, then its own) is not in the archive`;
  if (req.standby) {
    req.log(`warning: ${what}; the standby replays the archive up to ${plan.archiveEnd}, then waits for it`);
    return;
  }
  if (req.acceptArchiveGap) {
    req.log(`warning: ${what}; recovery ends at ${plan.archiveEnd}, before the fork (--accept-archive-gap)`);
    return;
  }
  throw new PgpitrError('ERR_NOT_FOUND', `${what}: recovery to the end of the archive would end at ${plan.archiveEnd}, before the fork, not on timeline ${last.timeline}`, {
    hint: `if timeline ${last.timeline} is a copy's (restored and promoted elsewhere with this stanza's archive_command), restore timeline ${parent} as it went on (--target-timeline ${parent}); if it is this cluster's new primary, switch WAL on it and wait until it is archived (pgpitr check does both), then restore again; or give --accept-archive-gap to end recovery at ${plan.archiveEnd}`,
  });
}
