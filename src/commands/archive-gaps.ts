// The archive's gaps as check and verify judge them: segments missing between two archived on
// one timeline (repo/archive-summary.ts, the gaps info lists per timeline), and where a
// timeline's WAL meets its ancestor's along its branch, each ancestor's segments counted up to
// where its child began (restore/timeline-gaps.ts, info's timeline_gaps). What expire left out
// between standalone backups on purpose (repo/expired-holes.ts) is set apart: no fault.

import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import type { ArchiveSummary } from '../repo/archive-summary.js';
import { insideExpiredHole } from '../repo/expired-holes.js';
import type { ExpiredHole } from '../repo/expired-holes.js';
import type { TimelineGap } from '../restore/timeline-gaps.js';

export interface ArchiveGap {
  /** First and last missing segment. */
  from: string;
  to: string;
  missing: number;
  /** The first segment archived after the gap: where replay could go on. */
  resumes: string;
  /** A gap where timelines meet: the timeline whose branch has it. */
  branch?: number;
}

/** The gaps, oldest first per kind, and how many more are what expire left out. */
export function archiveGaps(summary: ArchiveSummary, timelineGaps: TimelineGap[], expired: ExpiredHole[], segmentSize: number): { gaps: ArchiveGap[]; leftByExpire: number } {
  const after = (name: string) => {
    const s = parseSegmentFileName(name, segmentSize)!;
    return segmentFileName(s.timeline, s.segNo + 1n, segmentSize);
  };
  const found: ArchiveGap[] = [
    ...summary.timelines.flatMap((t) => t.gaps.map((g) => ({ from: g.from, to: g.to, missing: g.missing, resumes: after(g.to) }))),
    ...timelineGaps.map((g) => ({ from: g.from, to: g.to, missing: g.missing, resumes: g.resumes, branch: g.timeline })),
  ];
  const gaps = found.filter((g) => !insideExpiredHole(expired, g, segmentSize));
  return { gaps, leftByExpire: found.length - gaps.length };
}
