// check's question about the archive itself: is WAL missing between the first segment and
// the last, on one timeline or where timelines meet (restore/timeline-gaps.ts)? A gap on the
// server's timeline is judged only up to the segment the server says it archived: several
// pushes at once (asynchronous archiving) store later segments before earlier ones are in.
// What expire left out between standalone backups (repo/expired-holes.ts) is no gap
// (archive-gaps.ts, the gaps verify reports too).

import { summarizeArchive } from '../repo/archive-summary.js';
import type { ArchivedFile } from '../repo/archive-store.js';
import type { DropRecord } from '../repo/drops.js';
import type { TimelineGap } from '../restore/timeline-gaps.js';
import type { Finding } from './check-finding.js';
import type { ExpiredHole } from '../repo/expired-holes.js';
import { archiveGaps } from './archive-gaps.js';

/**
 * `reachesNow`: the backup a restore to now starts from, when one does (an unbroken window from it
 * to the server's last archived segment): the gaps are then before it, and what they cost is the
 * points in them, not the present: a warning.
 */
export function continuityFinding(files: ArchivedFile[], drops: DropRecord[], segmentSize: number, timelineGaps: TimelineGap[], archivedUpTo: string, expired: ExpiredHole[] = [], reachesNow: string | null = null): Finding {
  const summary = summarizeArchive(files, segmentSize);
  // What expire left out between standalone backups' WAL on purpose is no fault of archiving.
  const { gaps: all, leftByExpire: left } = archiveGaps(summary, timelineGaps, expired, segmentSize);
  const leftOut = left > 0 ? `; ${left} range(s) left out by expire between standalone backups (pgpitr info)` : '';
  // Still arriving: after the server's last archived segment, on its timeline; a gap that
  // reaches past it is judged up to it.
  const onServerTimeline = (g: { to: string }) => g.to.slice(0, 8) === archivedUpTo.slice(0, 8);
  const gaps = all.filter((g) => !onServerTimeline(g) || g.from <= archivedUpTo).map((g) => (onServerTimeline(g) && g.to > archivedUpTo ? { ...g, to: archivedUpTo } : g));
  const pending = all.filter((g) => onServerTimeline(g) && g.to > archivedUpTo).length;
  if (gaps.length === 0) {
    return {
      check: 'archive continuity',
      ok: true,
      message: `no segment missing between the first and the last archived on ${summary.timelines.length} timeline(s)${pending > 0 ? ` up to ${archivedUpTo} (what is missing after it, the server has not archived yet)` : ''}${leftOut}`,
    };
  }
  const explain = (g: { from: string; to: string }) => {
    const d = drops.find((r) => r.first <= g.to && r.last >= g.from);
    return d ? ` (dropped at ${d.at} on ${d.host}: the archive-push queue exceeded archive-push-queue-max)` : '';
  };
  const where = (g: { branch?: number }) => (g.branch === undefined ? '' : ` (along timeline ${g.branch}'s history)`);
  const missing = `WAL missing from the archive: ${gaps.map((g) => `${g.from} to ${g.to}${where(g)}${explain(g)}`).join('; ')}${leftOut}`;
  const why = 'if WAL was dropped, find why archiving fell behind (pusher.log in the spool) or raise archive-push-queue-max; segments a primary lost before a failover cannot come back';
  if (reachesNow !== null) {
    return { check: 'archive continuity', ok: true, message: `warning: ${missing}: the points in it cannot be recovered; backup ${reachesNow}, taken after it, restores to now`, hint: `it goes once expire removes the backups before backup ${reachesNow}; ${why}` };
  }
  return { check: 'archive continuity', ok: false, message: missing, hint: `point-in-time recovery cannot cross the missing WAL: take a new full backup now; ${why}` };
}
