// Whether the newest timeline of the archive is this cluster's present, for a
// restore that follows the latest timeline (the default). A copy of the cluster
// restored and promoted elsewhere with the stanza's archive_command (a restore
// drill) archives its new timeline into the stanza: PostgreSQL's "latest" then
// means that copy's history, and a recovery to a point after the copy's fork
// would replay the copy's WAL and stop cleanly on the wrong data. Told apart
// from a point-in-time recovery in place (whose new timeline is the present,
// and whose abandoned future stays archived) by when things were stored:
//   - a backup off the newest timeline's branch that ended after that
//     timeline's history file was stored: its timeline went on after the fork;
//   - the file stored last (the timeline archived now) on a timeline that went
//     on past its fork from the newest one's branch, or is off that branch.
// Either refuses, before anything is written, naming both ways out.

import { PgpitrError } from '../common/errors.js';
import { formatLsn } from '../postgres/lsn.js';
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
  nextSegment(timeline: number, segNo: bigint): bigint | null;
  stored?: { historyMs(timeline: number): number | null; liveTimeline: number | null };
}

/** Clocks differ (the server's stop time, the repository's file times): evidence must clear this. */
export const CLOCK_SLACK_MS = 10 * 60 * 1000;

export function checkLatestIsPresent(backups: Backup[], archive: Archive): void {
  const latest = Math.max(...archive.timelines());
  if (latest === 1 || !archive.stored) return;
  const history = archive.history(latest);
  if (history === null) return; // resolveBranch says what is missing
  const branch = timelineBranch(latest, history);
  const createdMs = archive.stored.historyMs(latest);
  const ways = (other: number) =>
    `give --target-timeline ${other} to recover this cluster along timeline ${other} as it went on, or --target-timeline ${latest} to follow timeline ${latest}; a copy restored and promoted elsewhere with this stanza's archive_command archives its timeline into the stanza (restore such copies with --archive-mode off)`;
  if (createdMs !== null) {
    const later = backups.filter((b) => !branchContains(branch, b.timeline, b.stopLsn) && b.stopTimeMs > createdMs + CLOCK_SLACK_MS).sort((a, b) => b.stopTimeMs - a.stopTimeMs)[0];
    if (later) {
      throw new PgpitrError('ERR_CHECK', `the newest timeline of the archive, ${latest}, may not be this cluster's present: backup ${later.id} (timeline ${later.timeline}, stop ${formatLsn(later.stopLsn)}) is not on its branch and ended ${new Date(later.stopTimeMs).toISOString()}, after timeline ${latest} began (its history file was stored ${new Date(createdMs).toISOString()})`, { hint: ways(later.timeline) });
    }
  }
  const live = archive.stored.liveTimeline;
  if (live === null || live === latest) return;
  const fork = branch.ancestors.find((a) => a.timeline === live);
  const seg = BigInt(archive.segmentSize);
  // On the branch up to its fork: archived past the fork means it went on; not on the branch at all: another line of history.
  const wentOn = fork === undefined || archive.nextSegment(live, (fork.switchpoint - 1n) / seg) !== null;
  if (wentOn) {
    throw new PgpitrError('ERR_CHECK', `the newest timeline of the archive, ${latest}, may not be this cluster's present: WAL is archived on timeline ${live} now (the file stored last is of timeline ${live}${fork ? `, past its fork to timeline ${latest} at ${formatLsn(fork.switchpoint)}` : `, which is not in timeline ${latest}'s history`})`, { hint: ways(live) });
  }
}
